/*
 * Parent-side frame host of the devportal simulator (our own code).
 *
 * Plays the portal page around an app iframe, the way the Bitrix24 parent window
 * talks to @bitrix24/b24jssdk (version 2.2.0, packages/jssdk/src/frame/...):
 *  - the iframe's window.name is "<DOMAIN>|<PROTOCOL>|<APP_SID>" (loader-b24frame);
 *  - the frame posts "<command>:<params json>:<callbackKey>:<APP_SID>" to the portal
 *    origin (params are omitted when empty, so "<command>:<callbackKey>:<APP_SID>");
 *  - the parent answers "<callbackKey>:<json result>" to the frame origin.
 * Test hooks: window.DevPortal.{messages,resizes,titles,paths,installFinished,reloads,calls};
 * window.__simReloads (how often a frame sent placement.call("reloadData"), also shown in
 * [data-sim=reload-count]) and window.__simCalls (imPhoneTo / imCallTo commands).
 */
(function () {
  "use strict";

  var cfgEl = document.getElementById("devportal-config");
  var cfg = cfgEl ? JSON.parse(cfgEl.textContent) : {};
  var host = window.DevPortal = {
    config: cfg, frames: {}, messages: [], replies: [], resizes: [], titles: [], paths: [],
    installFinished: false, errors: [], reloads: 0, calls: []
  };
  window.__simReloads = 0;
  window.__simCalls = host.calls;
  var NO_REPLY = {};

  function api(path, body) {
    return fetch(path, {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) { throw new Error(j.error || ("HTTP " + r.status)); }
        return j;
      });
    });
  }

  function titleEl(container) {
    var panel = container.closest(".app-panel");
    return panel ? panel.querySelector("[data-app-title]") : null;
  }

  // Open an app page: iframe named "<DOMAIN>|0|<APP_SID>" + a form POST into it.
  function openFrame(container, spec, reopen) {
    var name = spec.domain + "|0|" + spec.app_sid;
    container.textContent = "";
    var iframe = document.createElement("iframe");
    iframe.name = name;
    iframe.className = "app-frame";
    iframe.setAttribute("data-app-sid", spec.app_sid);
    iframe.setAttribute("allow", "clipboard-write");
    container.appendChild(iframe);
    container.setAttribute("data-app-sid", spec.app_sid);
    var form = document.createElement("form");
    form.method = "post";
    form.action = spec.url;
    form.target = name;
    form.style.display = "none";
    Object.keys(spec.form).forEach(function (k) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = k;
      input.value = spec.form[k];
      form.appendChild(input);
    });
    document.body.appendChild(form);
    form.submit();
    form.remove();
    Object.keys(host.frames).forEach(function (sid) {
      if (host.frames[sid].container === container) { delete host.frames[sid]; }
    });
    host.frames[spec.app_sid] = {
      appSid: spec.app_sid, iframe: iframe, container: container, init: spec.init,
      origin: new URL(spec.url, location.href).origin, reopen: reopen, spec: spec
    };
    return host.frames[spec.app_sid];
  }

  function requestFrame(container, body) {
    return api("/_devportal/api/frame-post", body).then(function (spec) {
      return openFrame(container, spec, function () { return requestFrame(container, body); });
    }).catch(function (err) {
      host.errors.push(String(err));
      container.textContent = "Could not open the application: " + err.message;
    });
  }
  host.open = requestFrame;

  function parseMessage(data) {
    var parts = data.split(":");
    if (parts.length < 3) { return null; }
    var params = parts.slice(1, -2).join(":");
    var parsed = params;
    if (params !== "") {
      try { parsed = JSON.parse(params); } catch (e) { parsed = params; }
    }
    return {command: parts[0], params: parsed, callback: parts[parts.length - 2], appSid: parts[parts.length - 1]};
  }

  function reply(entry, callback, result) {
    var msg = result === undefined ? callback : callback + ":" + JSON.stringify(result);
    host.replies.push({appSid: entry.appSid, callback: callback});
    if (entry.iframe.contentWindow) { entry.iframe.contentWindow.postMessage(msg, entry.origin); }
  }

  function record(entry, msg) {
    host.messages.push({appSid: entry.appSid, command: msg.command, params: msg.params});
    if (msg.command === "getInitData" || msg.command === "refreshAuth") { return; }
    api("/_devportal/api/frame-event", {app_sid: entry.appSid, command: msg.command, params: msg.params})
      .catch(function () {});
  }

  // --- simulated slider (openPath) ------------------------------------------------
  var slider = null;
  function openSlider(path) {
    if (!slider) {
      slider = document.createElement("div");
      slider.className = "slider-overlay";
      slider.innerHTML = '<div class="slider"><div class="slider-head"><span class="slider-path"></span>' +
        '<button type="button" class="btn slider-close">Close</button></div>' +
        '<iframe class="slider-frame"></iframe></div>';
      document.body.appendChild(slider);
    }
    var url = new URL(path, location.origin);
    if (!url.searchParams.has("user") && cfg.user) { url.searchParams.set("user", cfg.user); }
    slider.querySelector(".slider-path").textContent = path;
    slider.querySelector(".slider-frame").src = url.pathname + url.search;
    slider.setAttribute("data-path", path);
    slider.hidden = false;
    return new Promise(function (resolve) {
      var btn = slider.querySelector(".slider-close");
      btn.onclick = function () { slider.hidden = true; resolve({result: "close"}); };
    });
  }
  host.closeSlider = function () {
    if (slider && !slider.hidden) { slider.querySelector(".slider-close").click(); }
  };

  function recordCall(entry, command, p) {
    p = p || {};
    host.calls.push({appSid: entry.appSid, command: command, phone: p.phone, userId: p.userId,
                     video: p.video, params: p.params});
    return {};
  }

  var handlers = {
    getInitData: function (entry) { return entry.init; },
    refreshAuth: function (entry) {
      return api("/_devportal/api/refresh-auth", {app_sid: entry.appSid}).then(function (auth) {
        entry.init.AUTH_ID = auth.AUTH_ID;
        entry.init.REFRESH_ID = auth.REFRESH_ID;
        entry.init.AUTH_EXPIRES = auth.AUTH_EXPIRES;
        return auth;
      });
    },
    resizeWindow: function (entry, p) {
      p = p || {};
      var height = parseInt(p.height, 10);
      if (height > 0) {
        entry.iframe.style.height = height + "px";
        entry.iframe.setAttribute("data-height", String(height));
      }
      if (typeof p.width === "number" && p.width > 0) { entry.iframe.style.width = p.width + "px"; }
      if (p.width === "100%") { entry.iframe.style.width = "100%"; }
      host.resizes.push({appSid: entry.appSid, width: p.width, height: p.height});
      entry.container.setAttribute("data-resizes", String(host.resizes.length));
      return {};
    },
    setTitle: function (entry, p) {
      var title = p && p.title !== undefined ? String(p.title) : "";
      host.titles.push(title);
      var el = titleEl(entry.container);
      if (el) { el.textContent = title; }
      return {};
    },
    openPath: function (entry, p) {
      var path = p && p.path ? String(p.path) : "";
      if (path.charAt(0) !== "/" || path.charAt(1) === "/") {
        return {result: "error", errorCode: "PATH_NOT_AVAILABLE"};
      }
      var resolved = new URL(path, location.origin);
      host.paths.push(resolved.pathname + resolved.search);
      return openSlider(path);
    },
    setInstallFinish: function (entry) {
      if (!entry.init.INSTALL) { return undefined; }
      return api("/_devportal/api/install-finish", {app_sid: entry.appSid}).then(function (res) {
        host.installFinished = true;
        host.installDelivery = res.delivery_status;
        entry.container.setAttribute("data-install-finished", "Y");
        var state = document.getElementById("install-state");
        if (state) { state.textContent = "installed"; state.setAttribute("data-installed", "Y"); }
        // "Called during the installer phase it reloads the frame and launches the app"
        // (RD sdk/bx24-js-sdk/system-functions/bx24-install-finish.md).
        setTimeout(function () { openFrame(entry.container, res.next, entry.reopen); }, 50);
        return {};
      });
    },
    setInstall: function () { return {}; },
    getInterface: function () { return {}; },
    closeApplication: function () { host.closeSlider(); return undefined; },
    reloadWindow: function (entry) {
      if (entry.reopen) { setTimeout(entry.reopen, 0); }
      return {};
    },
    setScroll: function (entry, p) { window.scrollTo(0, parseInt((p || {}).scroll, 10) || 0); return {}; },
    // CRM detail tabs: placement.call("reloadData") asks the host page to reload the entity's
    // data after the app changed it (api-reference/widgets/ui-interaction/crm-card.md). The simulated
    // page has nothing to re-fetch, so it counts the request where a test can see it.
    reloadData: function (entry) {
      host.reloads += 1;
      window.__simReloads = host.reloads;
      document.querySelectorAll("[data-sim=reload-count]").forEach(function (el) {
        el.textContent = String(host.reloads);
      });
      return {};
    },
    // Telephony / messenger commands (BX24.im.phoneTo / callTo, $b24.parent.imPhoneTo /
    // imCallTo): fire-and-forget on a real portal, recorded here.
    imPhoneTo: function (entry, p) { return recordCall(entry, "imPhoneTo", p); },
    imCallTo: function (entry, p) { return recordCall(entry, "imCallTo", p); },
    setAppOption: function () { return {}; },
    setUserOption: function () { return {}; }
  };

  window.addEventListener("message", function (ev) {
    if (typeof ev.data !== "string") { return; }
    var entry = null;
    Object.keys(host.frames).forEach(function (sid) {
      if (host.frames[sid].iframe.contentWindow === ev.source) { entry = host.frames[sid]; }
    });
    if (!entry || ev.origin !== entry.origin) { return; }
    var msg = parseMessage(ev.data);
    if (!msg || msg.appSid !== entry.appSid) { return; }
    record(entry, msg);
    var handler = handlers[msg.command];
    if (!handler) { reply(entry, msg.callback); return; }  // unknown command: empty reply
    Promise.resolve().then(function () { return handler(entry, msg.params, msg); }).then(function (result) {
      if (result !== NO_REPLY) { reply(entry, msg.callback, result); }
    }, function (err) {
      host.errors.push(String(err));
      reply(entry, msg.callback, {error: String(err && err.message || err)});
    });
  });

  // --- page wiring ------------------------------------------------------------------
  function showTab(name) {
    document.querySelectorAll(".tab").forEach(function (b) {
      b.classList.toggle("active", b.getAttribute("data-tab") === name);
    });
    document.querySelectorAll(".tab-panel").forEach(function (panel) {
      panel.hidden = panel.getAttribute("data-panel") !== name;
      if (!panel.hidden) {
        var c = panel.querySelector(".app-frame-container");
        if (c && !c.getAttribute("data-app-sid") && !c.getAttribute("data-opening")) {
          c.setAttribute("data-opening", "Y");
          requestFrame(c, {kind: "placement", binding: parseInt(c.getAttribute("data-binding"), 10),
                           lead: cfg.lead, user: cfg.user, lang: cfg.lang});
        }
      }
    });
  }
  host.showTab = showTab;

  document.querySelectorAll(".tab").forEach(function (b) {
    b.addEventListener("click", function () { showTab(b.getAttribute("data-tab")); });
  });
  if (cfg.page === "lead") { showTab(cfg.autoOpen || "general"); }

  function setResult(text) {
    var el = document.getElementById("action-result");
    if (el) { el.textContent = text; }
  }
  document.querySelectorAll("[data-action]").forEach(function (b) {
    b.addEventListener("click", function () {
      var action = b.getAttribute("data-action");
      var container = document.getElementById("market-frame");
      if (action === "install") {
        requestFrame(container, {kind: "install", user: cfg.user, lang: cfg.lang});
      } else if (action === "open-app") {
        requestFrame(container, {kind: "app", user: cfg.user, lang: cfg.lang});
      } else if (action === "uninstall") {
        var clean = document.getElementById("clean-data");
        api("/_devportal/api/uninstall", {user: cfg.user, clean: !!(clean && clean.checked)}).then(function (res) {
          setResult("Uninstalled; ONAPPUNINSTALL deliveries: " + JSON.stringify(res.delivery_statuses));
          setTimeout(function () { location.reload(); }, 800);
        }, function (err) { setResult(String(err)); });
      }
    });
  });
}());
