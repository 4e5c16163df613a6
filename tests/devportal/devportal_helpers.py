"""Helpers for the devportal simulator tests (imported by conftest and tests).

The fake app is a tiny Flask server on loopback that records what the portal
pushes to it (ONAPPINSTALL / ONAPPUNINSTALL, frame POSTs, OAuth redirects) and
serves frame pages for the browser test.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import requests
from flask import Flask, Response, request
from werkzeug.serving import make_server

from devtools.devportal import Simulator
from devtools.devportal.servers import QuietHandler
from devtools.harness import CLIENT_ID, CLIENT_SECRET

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "FakeApp", "Rest"]

# The real @bitrix24/b24jssdk UMD bundle, if the repo vendors one (or B24JSSDK_UMD
# points at it): the browser test then runs the official frame client against our
# parent page.  Otherwise a minimal client speaking the same wire format is used.
SDK_CANDIDATES = [
    *([Path(os.environ["B24JSSDK_UMD"])] if os.environ.get("B24JSSDK_UMD") else []),
    *sorted((Path(__file__).resolve().parents[2] / "static").rglob("*b24jssdk*.js")),
]

MINIMAL_CLIENT = r"""
window.B24Mini = (function () {
  var parts = window.name.split("|");
  var origin = (parts[1] === "1" ? "https://" : "http://") + parts[0];
  var sid = parts[2], pending = {}, n = 0;
  window.addEventListener("message", function (ev) {
    if (ev.origin !== origin || typeof ev.data !== "string") return;
    var bits = ev.data.split(":"), id = bits.shift(), args = bits.join(":");
    if (pending[id]) { var f = pending[id]; delete pending[id]; f(args ? JSON.parse(args) : args); }
  });
  function send(cmd, params) {
    return new Promise(function (resolve) {
      var key = "k" + (++n) + Math.random().toString(36).slice(2);
      pending[key] = resolve;
      var list = [params ? JSON.stringify(params) : "", key, sid].filter(Boolean);
      parent.postMessage(cmd + ":" + list.join(":"), origin);
    });
  }
  return {send: send, sid: sid, origin: origin};
}());
"""

# Frame page of the fake app.  With the real SDK (UMD global B24Js) when available.
SDK_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>fake app</title>
<script src="/static/b24jssdk.js"></script></head><body><div id="out">loading</div><script>
(async function () {
  try {
    const $b24 = await B24Js.initializeB24Frame();
    window.$b24 = $b24;  // tests send further commands through the real SDK
    window.initDone = {placement: $b24.placement.placement, options: $b24.placement.options,
                       isAdmin: $b24.auth.isAdmin, install: $b24.isInstallMode,
                       auth: $b24.auth.getAuthData(), lang: $b24.getLang()};
    if ($b24.isInstallMode) { await $b24.installFinish(); return; }
    await $b24.parent.setTitle("Lead Card <b>test</b>");
    await $b24.parent.resizeWindow(600, 321);
    window.refreshed = await $b24.auth.refreshAuth();
    window.unknown = await $b24.placement.call("someUnknownCommand", {x: 1});
    const r = await $b24.actions.v2.call.make({method: "crm.lead.get", params: {id: $b24.placement.options.ID}});
    window.leadTitle = r.getData().result.TITLE;
    window.openPathDone = false;
    $b24.slider.openPath($b24.slider.getUrl("/crm/lead/details/102/")).then(function (x) { window.openPathDone = x; });
    document.getElementById("out").textContent = "ready";
    window.ready = true;
  } catch (e) { window.failed = String(e && (e.message || e)); }
})();
</script></body></html>"""

MINIMAL_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>fake app</title></head>
<body><div id="out">loading</div><script>""" + MINIMAL_CLIENT + """
(async function () {
  var b = window.B24Mini;
  var init = await b.send("getInitData");
  window.initDone = {placement: init.PLACEMENT, options: init.PLACEMENT_OPTIONS, isAdmin: init.IS_ADMIN,
                     install: init.INSTALL, auth: {access_token: init.AUTH_ID}, lang: init.LANG};
  if (init.INSTALL) { await b.send("setInstallFinish"); return; }
  await b.send("setTitle", {title: "Lead Card <b>test</b>"});
  await b.send("resizeWindow", {width: 600, height: 321});
  window.refreshed = await b.send("refreshAuth");
  window.unknown = await b.send("someUnknownCommand", {x: 1});
  var r = await fetch("http://" + init.DOMAIN + "/rest/crm.lead.get", {method: "POST",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({id: init.PLACEMENT_OPTIONS.ID, auth: init.AUTH_ID})});
  window.leadTitle = (await r.json()).result.TITLE;
  window.openPathDone = false;
  b.send("openPath", {path: "/crm/type/0/details/0/../../../../../crm/lead/details/102/?IFRAME=Y&IFRAME_TYPE=SIDE_SLIDER"})
    .then(function (x) { window.openPathDone = x; });
  document.getElementById("out").textContent = "ready";
  window.ready = true;
})();
</script></body></html>"""


class FakeApp:
    def __init__(self) -> None:
        self.received: list[dict] = []
        self.sdk_path = next((p for p in SDK_CANDIDATES if p.is_file()), None)
        self.use_sdk = False
        self.lock = threading.Lock()
        app = Flask("fake_leadcard_app")

        def record(kind: str) -> None:
            with self.lock:
                self.received.append({"kind": kind, "path": request.path, "args": request.args.to_dict(),
                                      "form": request.form.to_dict(), "pairs": list(request.form.items(multi=True)),
                                      "content_type": request.content_type})

        @app.route("/events", methods=["POST"])
        def events():
            record("event")
            return "ok"

        @app.route("/oauth/callback")
        def callback():
            record("callback")
            return "ok"

        @app.route("/static/b24jssdk.js")
        def sdk():
            if self.sdk_path is None:
                return Response("", 404)
            return Response(self.sdk_path.read_bytes(), mimetype="application/javascript")

        @app.route("/<path:frame>", methods=["GET", "POST"])
        @app.route("/", methods=["GET", "POST"], defaults={"frame": ""})
        def frame(frame: str):
            record("frame")
            return Response(SDK_PAGE if self.use_sdk else MINIMAL_PAGE, mimetype="text/html")

        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def events(self, name: str | None = None) -> list[dict]:
        with self.lock:
            return [r for r in self.received if r["kind"] == "event" and (name is None or r["form"].get("event") == name)]

    def clear(self) -> None:
        with self.lock:
            self.received.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Rest:
    """Tiny REST client for tests: POST JSON with ``auth`` in the body."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def __call__(self, portal: str, method: str, token: str | None, **params) -> requests.Response:
        body = dict(params)
        if token is not None:
            body["auth"] = token
        return requests.post(self.sim.portals[portal].client_endpoint + method, json=body, timeout=5,
                             allow_redirects=False)
