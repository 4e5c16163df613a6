/*
 * Lead Card actions: comment, plan a to-do, mark one done, move the stage (issue 13).
 *
 * Each form (data-lc-form) and "Done" button (data-lc-done) becomes one POST /actions with
 * the viewer's current token from the frame library (never a cookie: the request carries its
 * own credential) and an idempotency key made here, once per intended action:
 *
 * - the same key is sent again for a retry of the same action: after `expired_token` (the
 *   tab was open past AUTH_EXPIRES: refreshAuth, then once more) and after our own request
 *   timed out with no answer — the server answers a duplicate with the first answer and
 *   never writes twice;
 * - when the server says the outcome is unknown (Bitrix24 did not answer in time), nothing is
 *   retried automatically: the page says it may have been saved, and only a deliberate
 *   second click ("Send again anyway") makes a new key.
 *
 * On success the card's content is replaced in place with the server's fresh render, and the
 * host is asked to refresh its own data (`reloadData`, the only command the CRM detail tab
 * supports: api-reference/widgets/ui-interaction/index.md).
 *
 * No inline handlers (CSP); loaded with the page nonce after frame.js.
 */
(function () {
  "use strict";

  var doc = document;
  var TIMEOUT_MS = 15000; // the server's own budget is 10 s
  var keys = {}; // action signature -> key, while that action is not yet settled
  var busy = false;

  function noop() {}

  function status() {
    return doc.querySelector("[data-lc-status]");
  }

  function text(name) {
    var el = status();
    return (el && el.getAttribute("data-msg-" + name)) || "";
  }

  function say(message, kind) {
    var el = status();
    if (!el) {
      return;
    }
    el.textContent = message || "";
    el.className = "lc-notice" + (kind ? " lc-notice--" + kind : "");
    el.hidden = !message;
  }

  function newKey() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    var out = "";
    for (var i = 0; i < bytes.length; i++) {
      out += ("0" + bytes[i].toString(16)).slice(-2);
    }
    return out; // 32 characters of [0-9a-f]
  }

  function localDeadline(value) {
    // <input type="datetime-local"> gives "2031-03-04T10:00": add this browser's UTC offset
    // for that moment, so Bitrix24 reads the time the person meant.
    if (!value) {
      return "";
    }
    var when = new Date(value);
    if (isNaN(when.getTime())) {
      return value;
    }
    var offset = -when.getTimezoneOffset();
    var sign = offset >= 0 ? "+" : "-";
    var abs = Math.abs(offset);
    var hh = ("0" + Math.floor(abs / 60)).slice(-2);
    var mm = ("0" + (abs % 60)).slice(-2);
    var base = value.length === 16 ? value + ":00" : value.slice(0, 19);
    return base + sign + hh + ":" + mm;
  }

  function paramsOf(form) {
    var kind = form.getAttribute("data-lc-form");
    var get = function (name) {
      var field = form.elements[name];
      return field ? field.value : "";
    };
    if (kind === "comment") {
      return { text: get("text") };
    }
    if (kind === "todo") {
      return {
        title: get("title"),
        deadline: localDeadline(get("deadline")),
        description: get("description")
      };
    }
    return { status_id: get("status_id") };
  }

  function authData(b24, fresh) {
    if (!fresh) {
      var data = b24.auth.getAuthData();
      if (data && data.access_token) {
        return Promise.resolve(data);
      }
    }
    return b24.auth.refreshAuth().then(function () {
      return b24.auth.getAuthData();
    });
  }

  function post(url, body) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, TIMEOUT_MS) : 0;
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      signal: controller ? controller.signal : undefined
    }).then(function (response) {
      clearTimeout(timer);
      return response.json().then(
        function (json) { return { status: response.status, json: json }; },
        function () { return { status: response.status, json: null }; }
      );
    }, function (error) {
      clearTimeout(timer);
      throw error;
    });
  }

  function send(b24, action, params, key) {
    var page = doc.body;
    // Beside the page's own URL (<root>/placement), so a deployment under a path prefix works.
    var url = new URL("actions", window.location.href).href;
    var build = function (auth) {
      return {
        member_id: auth.member_id,
        auth: auth.access_token,
        placement: "CRM_LEAD_DETAIL_TAB",
        id: Number(page.getAttribute("data-lc-lead")),
        action: action,
        params: params,
        key: key,
        lang: page.getAttribute("data-lc-lang") || "en"
      };
    };
    return authData(b24, false).then(function (auth) {
      return post(url, build(auth));
    }).then(function (res) {
      var code = res.json && res.json.error && res.json.error.code;
      if (res.status === 401 && code === "expired_token") {
        // The frame's token outlived AUTH_EXPIRES: a fresh one, and once more, same key.
        return authData(b24, true).then(function (auth) {
          return post(url, build(auth));
        });
      }
      return res;
    });
  }

  function setBusy(scope, on) {
    busy = on;
    var controls = scope.querySelectorAll("button, input, select, textarea");
    for (var i = 0; i < controls.length; i++) {
      controls[i].disabled = on;
    }
    scope.setAttribute("aria-busy", on ? "true" : "false");
  }

  function showFieldError(scope, message) {
    var slot = scope.querySelector("[data-lc-error]");
    if (slot) {
      slot.textContent = message || "";
      slot.hidden = !message;
    }
  }

  function applyStageColors(root) {
    // The stage pill's colours come as data (a <style> would need the page's nonce).
    var pills = root.querySelectorAll("[data-lc-stage-bg]");
    for (var i = 0; i < pills.length; i++) {
      pills[i].style.setProperty("--lc-stage-bg", pills[i].getAttribute("data-lc-stage-bg"));
      pills[i].style.setProperty("--lc-stage-fg", pills[i].getAttribute("data-lc-stage-fg"));
    }
  }

  function replaceCard(html, formKind) {
    var card = doc.querySelector("[data-lc-card]");
    if (!card || typeof html !== "string") {
      return;
    }
    card.innerHTML = html;
    applyStageColors(card);
    if (window.LeadCard) {
      window.LeadCard.fit();
    }
    // Keep the keyboard where it was: the same form's first control in the new card.
    var again = formKind && card.querySelector("[data-lc-form='" + formKind + "']");
    var target = again && again.querySelector("textarea, input, select");
    if (target) {
      target.focus();
    } else {
      var note = status();
      if (note) {
        note.focus();
      }
    }
  }

  function run(action, params, scope, signature, formKind) {
    var b24 = window.LeadCard && window.LeadCard.frame();
    if (!b24) {
      say(text("no-frame"), "error");
      return;
    }
    if (busy) {
      return;
    }
    var key = keys[signature] || (keys[signature] = newKey());
    showFieldError(scope, "");
    setBusy(scope, true);
    say(text("sending"), "busy");
    send(b24, action, params, key).then(function (res) {
      setBusy(scope, false);
      var json = res.json || {};
      if (json.ok) {
        delete keys[signature];
        say(json.result && json.result.message, "ok");
        if (json.result && json.result.html) {
          replaceCard(json.result.html, formKind);
        }
        // Bitrix24's own card and timeline show the change too.
        b24.placement.call("reloadData", {}).catch(noop);
        return;
      }
      var error = json.error || {};
      if (error.code === "outcome_unknown") {
        // May have been saved: never re-sent by itself; a second click is a new action.
        delete keys[signature];
        say(error.message, "warning");
        markAgain(scope);
        return;
      }
      if (res.status < 500 && error.code !== "in_progress") {
        delete keys[signature]; // refused, nothing written: the next try is a new action
      }
      if (scope.querySelector("[data-lc-error]")) {
        // Next to the control it is about (and read out: the slot is its aria-describedby).
        showFieldError(scope, error.message);
        say("", "");
      } else {
        say(error.message || text("network"), "error");
      }
    }, function () {
      // No answer from Lead Card at all: the key is kept, so trying again is safe.
      setBusy(scope, false);
      say(text("network"), "error");
    });
  }

  function markAgain(scope) {
    var button = scope.querySelector("button[type=submit]") ||
      (scope.matches && scope.matches("button") ? scope : null);
    var again = text("again");
    if (button && again) {
      button.textContent = again;
    }
  }

  function onSubmit(event) {
    var form = event.target;
    if (!form || !form.getAttribute || !form.getAttribute("data-lc-form")) {
      return;
    }
    event.preventDefault();
    var kind = form.getAttribute("data-lc-form");
    var params = paramsOf(form);
    if (kind === "stage") {
      var current = form.querySelector("option[data-lc-current]");
      if (current && current.value === params.status_id) {
        return; // already there: nothing to write
      }
    }
    run(kind, params, form, kind + ":" + JSON.stringify(params), kind);
  }

  function onClick(event) {
    var target = event.target;
    if (!target || typeof target.closest !== "function") {
      return;
    }
    var done = target.closest("[data-lc-done]");
    if (!done) {
      return;
    }
    event.preventDefault();
    var id = Number(done.getAttribute("data-lc-done"));
    run("todo_done", { activity_id: id }, done, "todo_done:" + id, null);
  }

  function start() {
    doc.addEventListener("submit", onSubmit);
    doc.addEventListener("click", onClick);
    applyStageColors(doc);
  }

  if (doc.readyState === "loading") {
    doc.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
