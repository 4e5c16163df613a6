/*
 * Lead Card frame glue, on top of the vendored @bitrix24/b24jssdk (global B24Js).
 *
 * - Outside Bitrix24 initializeB24Frame() rejects at once (no DOMAIN/APP_SID
 *   in window.name): we swallow that and the page stays a plain, readable page.
 * - In the portal: fit the iframe height to the content now and on every size
 *   change (ResizeObserver, <details> toggles, late images); open
 *   [data-b24-path] links in a Bitrix24 slider; the install page calls
 *   installFinish(); [data-lc-action="reload"] reloads through the portal;
 *   phone links call through the portal's telephony (imPhoneTo). Other scripts
 *   reach the frame through window.LeadCard (actions.js).
 * - The library itself is loaded from here, after the card's first paint.
 *
 * No inline handlers anywhere (CSP); this file is loaded with the page nonce.
 */
(function () {
  "use strict";

  var doc = document;
  var self = doc.currentScript; // carries the frame library's URL and hash (loadLibrary)
  var frame = null; // B24Frame once the handshake with the portal succeeded
  var lastHeight = 0;
  var pending = false;

  // Portal paths we ever open (mirrors leadcard/cards.py).
  var PATH_RE = /^\/(?:crm\/(?:lead|deal|contact|company)\/details\/\d+\/|crm\/type\/\d+\/details\/\d+\/|company\/personal\/user\/\d+\/)$/;

  function noop() {}

  // Other scripts of the page (actions.js) reach the frame through window.LeadCard.
  window.LeadCard = {
    frame: function () {
      return frame;
    },
    fit: function () {
      scheduleFit();
    }
  };

  function contentHeight() {
    // The body's own box, not documentElement.scrollHeight: the latter never
    // drops below the current iframe height, so the frame could grow but
    // never shrink back (e.g. after closing "Show all fields").
    var rect = doc.body.getBoundingClientRect();
    return Math.max(1, Math.ceil(rect.height));
  }

  function fit() {
    pending = false;
    if (!frame) {
      return;
    }
    var height = contentHeight();
    if (height === lastHeight) {
      return;
    }
    lastHeight = height;
    var parent = frame.parent;
    var commands = window.B24Js && window.B24Js.MessageCommands;
    if (parent.message && commands && commands.resizeWindow) {
      // What parent.fitWindow() sends ({width: "100%", height}), with our
      // measured height. (parent.resizeWindow() rejects a "100%" width.)
      parent.message
        .send(commands.resizeWindow, { width: "100%", height: height, isSafely: true })
        .catch(noop);
    } else {
      parent.fitWindow().catch(noop);
    }
  }

  function scheduleFit() {
    if (pending) {
      return;
    }
    pending = true;
    (window.requestAnimationFrame || window.setTimeout)(fit);
  }

  function watchSize() {
    if (typeof window.ResizeObserver === "function") {
      new window.ResizeObserver(scheduleFit).observe(doc.body);
    }
    // <details> toggles and image loads also change the height; "toggle" and
    // "load" don't bubble, so listen in the capture phase.
    doc.addEventListener("toggle", scheduleFit, true);
    doc.addEventListener("load", scheduleFit, true);
    window.addEventListener("load", scheduleFit);
    window.addEventListener("resize", scheduleFit);
    scheduleFit();
  }

  function openPath(path) {
    if (!frame || !PATH_RE.test(path)) {
      return;
    }
    var slider = frame.slider;
    // Resolves when the slider closes; nothing to do then.
    slider.openPath(slider.getUrl(path), 1640).catch(noop);
  }

  function reload() {
    if (frame) {
      frame.parent.reloadWindow().catch(function () {
        window.location.reload();
      });
    } else {
      window.location.reload();
    }
  }

  function onClick(event) {
    var target = event.target;
    if (!target || typeof target.closest !== "function") {
      return;
    }
    var link = target.closest("[data-b24-path]");
    if (link) {
      // href="#" is only the no-JS fallback; never navigate the frame.
      event.preventDefault();
      openPath(link.getAttribute("data-b24-path") || "");
      return;
    }
    var phone = target.closest(".lc-value--phone a[href^='tel:']");
    if (phone && frame) {
      // Click-to-call through the portal's telephony. Fire-and-forget: the promise only
      // says the command was posted (sdk/bx24-js-sdk/additional-functions/outdated/
      // bx24-im-phone-to.md; Messenger.startPhoneCall is out of an iframe's reach).
      event.preventDefault();
      frame.parent.imPhoneTo(decodeURIComponent(phone.getAttribute("href").slice(4))).catch(noop);
      return;
    }
    var action = target.closest("[data-lc-action]");
    if (action && action.getAttribute("data-lc-action") === "reload") {
      event.preventDefault();
      reload();
    }
  }

  function hideBrokenAvatar(event) {
    // An avatar the CSP or the network refused: show the initials under it.
    var el = event.target;
    if (el && el.classList && el.classList.contains("lc-avatar__img")) {
      el.parentNode.removeChild(el);
    }
  }

  function dropBrokenAvatars() {
    // Images that failed before this script ran fired their "error" already.
    var imgs = doc.querySelectorAll("img.lc-avatar__img");
    for (var i = 0; i < imgs.length; i++) {
      if (imgs[i].complete && imgs[i].naturalWidth === 0) {
        imgs[i].parentNode.removeChild(imgs[i]);
      }
    }
  }

  function finishInstall() {
    if (doc.body.getAttribute("data-lc-install") !== "finish") {
      return;
    }
    if (frame.isInstallMode) {
      frame.installFinish().catch(noop);
    }
  }

  function afterFirstPaint(callback) {
    // rAF runs just before the frame is drawn; a task queued from it runs after. The
    // timer covers a frame that is never drawn (a hidden tab): then nobody waits on paint.
    var called = false;
    function once() {
      if (!called) {
        called = true;
        callback();
      }
    }
    if (window.requestAnimationFrame) {
      window.requestAnimationFrame(function () {
        window.setTimeout(once, 0);
      });
    }
    window.setTimeout(once, 250);
  }

  function loadLibrary(then) {
    // The card is painted before the frame library (440 KB of JS: 70-130 ms to compile and
    // run on the benchmark's 2-core box) is fetched and run: nothing on screen needs it, only
    // fitting, the slider and actions do (docs/performance.md, "What the salesperson feels"). Its URL and SRI hash
    // ride on this script's tag; the nonce is this script's own.
    var tag = self && self.getAttribute("data-lc-sdk-src");
    if (window.B24Js || !tag) {
      then();
      return;
    }
    afterFirstPaint(function () {
      var script = doc.createElement("script");
      script.src = tag;
      script.integrity = self.getAttribute("data-lc-sdk-integrity") || "";
      script.crossOrigin = "anonymous";
      script.nonce = self.nonce;
      script.onload = then;
      doc.body.appendChild(script); // on error: no library, a plain standalone page
    });
  }

  function start() {
    doc.addEventListener("click", onClick);
    doc.addEventListener("error", hideBrokenAvatar, true);
    dropBrokenAvatars();
    loadLibrary(connect);
  }

  function connect() {
    var sdk = window.B24Js;
    if (!sdk || typeof sdk.initializeB24Frame !== "function") {
      return; // library missing: plain standalone page
    }
    sdk.initializeB24Frame().then(
      function (b24) {
        frame = b24;
        doc.documentElement.classList.add("lc-in-frame");
        finishInstall();
        watchSize();
      },
      noop // not inside Bitrix24 (or the portal did not answer): stay standalone
    );
  }

  if (doc.readyState === "loading") {
    doc.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
