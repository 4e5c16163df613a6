"""Local Bitrix24 portal simulator for development, demos and integration tests.

Plays the Bitrix24 side of the Lead Card app over real HTTP on 127.0.0.1: an OAuth
server (token endpoint, app.info, ``/_sim/`` control API) and several portals (REST,
batch, placement/event bindings, mock lead pages hosting the app iframe, the
marketplace install flow, ONAPPINSTALL / ONAPPUNINSTALL pushes), with fault, latency
and rate-limit knobs.  Protocol facts come from the public
docs (``bitrix24/b24restdocs``), cited where they shape the code.

    from devtools.devportal import Simulator
    with Simulator(app_url="http://127.0.0.1:8000", client_id="...", client_secret="...") as sim:
        print(sim.portals["a"].base_url)

Module map: ``state`` (world, tokens, counters), ``data`` (sample CRM data),
``params`` (PHP-style keys), ``envelope`` (JSON shapes, error catalogue), ``faults``
(faults, rate limit, sockets), ``oauth_server``, ``portal_app`` (REST + page API),
``rest`` (methods), ``batch``, ``frames`` (frame POSTs), ``lifecycle``
(install/uninstall pushes), ``pages`` + ``static/`` (browser pages), ``control``
(``/_sim/``), ``servers`` (werkzeug threads), ``simulator`` (public API),
``__main__`` (runner).
"""

from .simulator import PortalHandle, Simulator

__all__ = ["Simulator", "PortalHandle"]
