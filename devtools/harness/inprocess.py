"""The app in a werkzeug threaded server inside the caller's process (tests reach its objects).

`Served` runs any WSGI app on a loopback port in a daemon thread; `LiveApp` is Lead Card
served that way, with its services and a small client that never follows redirects.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import requests
from werkzeug.serving import make_server


class Served:
    """A WSGI app on ``127.0.0.1:port`` (0: any free port) in a daemon thread."""

    def __init__(self, wsgi: Any, port: int = 0, **server_kw: Any) -> None:
        self.server = make_server("127.0.0.1", port, wsgi, threaded=True, **server_kw)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        # a short poll interval: shutdown() returns within 50 ms
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


class LiveApp:
    """Lead Card (a Flask app from `create_app`) served by `Served`."""

    def __init__(self, app: Any, served: Served) -> None:
        self.app = app
        self.served = served
        self.server = served.server
        self.url = served.url
        self.port = served.port

    @property
    def services(self):  # type: ignore[no-untyped-def]
        return self.app.extensions["leadcard"]

    @property
    def store(self):  # type: ignore[no-untyped-def]
        return self.services.store

    def post(self, url_or_path: str, form: Any = None, **kw: Any) -> requests.Response:
        """POST a form to a path of this app or to a full URL (a registered handler URL)."""
        url = url_or_path if url_or_path.startswith("http") else self.url + url_or_path
        timeout = kw.pop("timeout", 30)
        return requests.post(url, data=form, allow_redirects=False, timeout=timeout, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        timeout = kw.pop("timeout", 30)
        return requests.get(self.url + path, allow_redirects=False, timeout=timeout, **kw)

    def stop_serving(self) -> None:
        """Stop answering on the port; the app and its database stay usable."""
        self.served.stop()

    def stop(self) -> None:
        self.stop_serving()
        self.services.engine.dispose()


def serve_app(settings: Mapping[str, str], port: int = 0) -> LiveApp:
    """`create_app(settings)` served on ``port``."""
    from app import create_app

    app = create_app(dict(settings))
    return LiveApp(app, Served(app, port))
