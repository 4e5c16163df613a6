"""What the salesperson feels: from the portal's placement POST to the card painted in the frame.

    .venv/bin/python -m bench.paint [--runs 15] [--latency 0.05] [--lead 101] [--no-doc]

Real Chromium (Playwright, /usr/bin/chromium), the simulator's lead page with the Lead Card
tab, Lead Card under gunicorn (the same subjects as bench/run.py, started by bench/servers.py).
The simulator's host page POSTs the placement into the iframe, exactly as Bitrix24 does; in
the frame's document the benchmark reads, relative to the start of that navigation (the
frame's own ``timeOrigin``):

* Navigation Timing: ``responseStart`` (first byte of the card page), ``responseEnd``,
  ``domContentLoadedEventEnd``, ``loadEventEnd``;
* Paint Timing: ``first-contentful-paint`` — the card on screen;
* ``fitted``: when the frame's first resizeWindow reached the portal page (frame.js), i.e. the
  iframe grows from the portal's default height to the whole card.

Each run opens the lead page in a new browser context (an empty cache: **cold**, the first
card of the day), then opens it again in the same context (**warm**: the static files come
from the browser cache; the card page itself is ``no-store`` and always fetched). The app is
warmed by one untimed view first, so its own caches are those of a running server. Upstream
latency ``--latency`` is injected at the simulator on every REST call, as in bench/run.py.

Page weight: every response of the frame in a cold run, as transferred (Resource Timing,
with the encoding the app chose: leadcard/web/static_files.py serves brotli/gzip variants of
static files; pages are not compressed by the app) and decoded, plus what gzip -9 and brotli
-11 would make of each; with the frame library's (static/vendor/b24jssdk-*.min.js) share.

Prints a table and (unless --no-doc) writes it into docs/performance.md between
``<!-- paint:begin -->`` and ``<!-- paint:end -->``. Loopback only; every process this
starts is stopped by its id at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import brotli

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # `python bench/paint.py`
    sys.path.insert(0, str(ROOT))

from bench.stats import pct

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 # nothing leaves 127.0.0.1
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]

# Runs in every frame before its own scripts: the portal page (top) notes when each
# resizeWindow message from an app frame arrived, in absolute milliseconds.
_PARENT_HOOK = """
if (window.top === window) {
  window.__lcResizes = [];
  window.addEventListener('message', (ev) => {
    if (String(ev.data).indexOf('resizeWindow') >= 0)
      window.__lcResizes.push(performance.timeOrigin + performance.now());
  }, true);
}
"""

_FRAME_TIMING = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  const res = performance.getEntriesByType('resource').map(e => ({
    url: e.name, transfer: e.transferSize, encoded: e.encodedBodySize, decoded: e.decodedBodySize}));
  return {origin: performance.timeOrigin, ready: !!(nav && nav.loadEventEnd > 0 && fcp),
          nav: nav && {url: nav.name, responseStart: nav.responseStart, responseEnd: nav.responseEnd,
                       domContentLoaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
                       transfer: nav.transferSize, encoded: nav.encodedBodySize,
                       decoded: nav.decodedBodySize},
          fcp: fcp ? fcp.startTime : null, resources: res};
}"""


# --- the arithmetic and the report (pure; tests/unit/test_bench_paint.py) ------------------

# (key in a sample, label): the order of the report's rows.
METRICS = [
    ("responseStart", "first byte of the card page"),
    ("responseEnd", "card page received"),
    ("fcp", "first contentful paint"),
    ("domContentLoaded", "DOMContentLoaded"),
    ("load", "load"),
    ("fitted", "frame fitted (first resizeWindow at the portal)"),
]
SDK_PREFIX = "b24jssdk-"
BEGIN, END = "<!-- paint:begin -->", "<!-- paint:end -->"


def summarize(samples: list[dict]) -> dict[str, dict[str, float]]:
    """metric → {median, p90, n} over the samples that have it (ms)."""
    out = {}
    for key, _ in METRICS:
        values = [s[key] for s in samples if s.get(key) is not None]
        out[key] = {"median": pct(values, 50), "p90": pct(values, 90), "n": len(values)}
    return out


def kind_of(url: str) -> str:
    """html / css / js / other, by the path's extension (the page itself has none)."""
    path = url.split("?", 1)[0].split("#", 1)[0]
    name = path.rsplit("/", 1)[-1]
    if name.endswith(".css"):
        return "css"
    if name.endswith(".js"):
        return "js"
    if "." not in name:
        return "html"
    return "other"


def weigh(sample: dict, sizes: dict[str, tuple]) -> dict:
    """The cold view's responses: per file and per kind, bytes as transferred (headers
    included, Resource Timing ``transferSize``), body as served (``encodedBodySize``),
    decoded, and gzip -9 / brotli -11 of the decoded body (``sizes``: url → (encoding
    served, decoded, gzip, brotli)); the frame library's share of each total."""
    entries = [sample["document"], *sample["resources"]]
    files = []
    for e in entries:
        enc, decoded, gz, br = sizes.get(e["url"], ("", e["decoded"], e["decoded"], e["decoded"]))
        name = e["url"].split("?", 1)[0].rsplit("/", 1)[-1] or "/"
        files.append({"name": name, "kind": kind_of(e["url"]), "encoding": enc or "identity",
                      "transfer": e["transfer"], "served": e["encoded"], "decoded": decoded,
                      "gzip": gz, "brotli": br, "sdk": name.startswith(SDK_PREFIX)})
    cols = ("transfer", "served", "decoded", "gzip", "brotli")
    kinds = {}
    for kind in ("html", "css", "js", "other"):
        of_kind = [f for f in files if f["kind"] == kind]
        if of_kind:
            kinds[kind] = {c: sum(f[c] for f in of_kind) for c in cols}
    total = {c: sum(f[c] for f in files) for c in cols}
    sdk = {c: sum(f[c] for f in files if f["sdk"]) for c in cols}
    share = {c: (sdk[c] / total[c] if total[c] else 0.0) for c in cols}
    return {"files": files, "kinds": kinds, "total": total, "sdk": sdk, "sdk_share": share}


def _ms(value: float) -> str:
    return "–" if value != value else f"{value:.0f}"  # NaN: no sample


def timing_rows(res: dict) -> list[list[str]]:
    """Rows: metric label, cold median, cold p90, warm median, warm p90 (ms)."""
    return [[label, _ms(res["cold"][k]["median"]), _ms(res["cold"][k]["p90"]),
             _ms(res["warm"][k]["median"]), _ms(res["warm"][k]["p90"])] for k, label in METRICS]


def weight_rows(weight: dict) -> list[list[str]]:
    """Rows: what, as transferred, body as served, decoded, gzip -9, brotli -11 (bytes)."""
    def row(label: str, v: dict) -> list[str]:
        return [label] + [f"{v[c]:,}" for c in ("transfer", "served", "decoded", "gzip", "brotli")]
    rows = [row(f"`{f['name']}` ({f['kind']}, served {f['encoding']})", f) for f in weight["files"]]
    rows += [row(f"**{k.upper()}**", v) for k, v in weight["kinds"].items()]
    rows.append(row("**total**", weight["total"]))
    share = weight["sdk_share"]
    rows.append(["frame library's share"] + [f"{share[c] * 100:.0f} %"
                                              for c in ("transfer", "served", "decoded", "gzip", "brotli")])
    return rows


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


TIMING_HEADER = ["ms from the placement POST", "cold median", "cold p90", "warm median", "warm p90"]
WEIGHT_HEADER = ["cold view of the card", "transferred", "body as served", "decoded", "gzip -9",
                 "brotli -11"]


def render_markdown(res: dict, command: str) -> str:
    """The generated block of docs/performance.md (between BEGIN and END)."""
    return "\n".join([
        BEGIN,
        f"`{command}` — {res['date']}, Chromium {res['chromium']}, lead {res['lead']}, "
        f"{res['runs']} cold + {res['runs']} warm views, {res['latency'] * 1000:.0f} ms injected "
        "on every Bitrix24 call, loopback HTTP:",
        "",
        _table(TIMING_HEADER, timing_rows(res)),
        "",
        _table(WEIGHT_HEADER, weight_rows(res["weight"])),
        END,
    ])


def render_text(res: dict) -> str:
    """The same two tables for the terminal."""
    def fmt(header: list[str], rows: list[list[str]]) -> str:
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True))
                         for r in [header, *rows])
    return fmt(TIMING_HEADER, timing_rows(res)) + "\n\n" + fmt(WEIGHT_HEADER, weight_rows(res["weight"]))


def replace_block(text: str, block: str, heading: str = "## What the salesperson feels") -> str:
    """``text`` with its paint block replaced by ``block``; without one, the block goes
    under ``heading`` (appended, with the heading, when that is missing too)."""
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        return before + block + rest.split(END, 1)[1]
    if heading in text:
        before, after = text.split(heading, 1)
        first, nl, rest = after.partition("\n")
        return before + heading + first + nl + "\n" + block + "\n" + rest
    return text.rstrip("\n") + "\n\n" + heading + "\n\n" + block + "\n"


def write_doc(path: Path, block: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(replace_block(text, block), encoding="utf-8")


# --- the browser ------------------------------------------------------------------------

def _app_frame(page, app_url: str, timeout: float = 30.0):
    """The Playwright Frame of our iframe once its placement document loaded and painted."""
    deadline = time.monotonic() + timeout
    timing = None
    while time.monotonic() < deadline:
        for frame in page.frames:
            if frame.url.startswith(app_url + "/placement"):
                try:
                    timing = frame.evaluate(_FRAME_TIMING)
                except Exception:  # the frame is still being replaced: look again
                    timing = None
                if timing and timing["ready"]:
                    return frame, timing
        page.wait_for_timeout(20)  # not time.sleep: Playwright learns of new frames meanwhile
    raise SystemExit(f"the card frame never loaded and painted within {timeout:.0f} s "
                     f"(frames {[f.url[:80] for f in page.frames]}, last timing {timing})")


def _fitted(page, origin: float, timeout: float = 10.0) -> float | None:
    """ms from the frame's navigation start to its first resizeWindow at the portal page."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        after = [t for t in page.evaluate("window.__lcResizes || []") if t >= origin]
        if after:
            return after[0] - origin
        page.wait_for_timeout(20)
    return None


def view(page, lead_url: str, app_url: str, bodies: dict | None = None) -> dict:
    """Open the lead page with the Lead Card tab; the frame's figures in ms (and, when
    ``bodies`` is given, every frame response's decoded body by URL)."""
    responses: list = []

    def keep(response) -> None:
        responses.append(response)

    if bodies is not None:
        page.on("response", keep)
    page.goto(lead_url)
    frame, timing = _app_frame(page, app_url)
    fitted = _fitted(page, timing["origin"])
    # The frame library is fetched after the first paint (frame.js loadLibrary), and the
    # frame fitted once it ran: only now has the frame fetched everything it will.
    resources = frame.evaluate(_FRAME_TIMING)["resources"]
    if bodies is not None:
        page.remove_listener("response", keep)
        for response in responses:
            if not response.url.startswith(app_url) or response.status != 200:
                continue
            with contextlib.suppress(Exception):  # an aborted body: nothing to weigh
                bodies[response.url] = (response.header_value("content-encoding") or "",
                                        response.body())
    nav = timing["nav"]
    sample = {k: nav[k] for k in ("responseStart", "responseEnd", "domContentLoaded", "load")}
    sample["fcp"] = timing["fcp"]
    sample["fitted"] = fitted
    sample["resources"] = resources
    sample["document"] = {k: nav[k] for k in ("url", "transfer", "encoded", "decoded")}
    return sample


def measure(browser, lead_url: str, app_url: str, runs: int, log) -> dict:
    """``runs`` cold views (a new context each) and, after each, a warm one in its context."""
    cold: list[dict] = []
    warm: list[dict] = []
    bodies: dict[str, tuple[str, bytes]] = {}
    for i in range(runs):
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      device_scale_factor=1)
        context.add_init_script(_PARENT_HOOK)
        try:
            page = context.new_page()
            cold.append(view(page, lead_url, app_url, bodies if i == 0 else None))
            warm.append(view(page, lead_url, app_url))
        finally:
            context.close()
        log(f"run {i + 1}/{runs}: cold fcp {cold[-1]['fcp']:.0f} ms, "
            f"warm fcp {warm[-1]['fcp']:.0f} ms")
    return {"cold": cold, "warm": warm, "bodies": bodies}


def compressed_sizes(body: bytes) -> tuple[int, int]:
    """(gzip -9, brotli -11) bytes of ``body``, as static_files.py would make them."""
    return len(gzip.compress(body, compresslevel=9, mtime=0)), len(brotli.compress(body, quality=11))


def phase_paint(portal_base_url: str, app_url: str, lead_id: int, runs: int, latency: float,
                log=print) -> dict[str, Any]:
    """Against a running simulator and Lead Card (installed): one untimed view (the app's
    caches: those of a running server), then ``runs`` cold + warm views; the figures."""
    from playwright.sync_api import sync_playwright

    lead_url = f"{portal_base_url}/crm/lead/details/{lead_id}/?user=1&lang=en&tab=app"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            warmup = browser.new_context()
            view(warmup.new_page(), lead_url, app_url)
            warmup.close()
            raw = measure(browser, lead_url, app_url, runs, log)
            version = browser.version
        finally:
            browser.close()
    bodies = raw.pop("bodies")
    sizes = {url: (enc, len(body), *compressed_sizes(body)) for url, (enc, body) in bodies.items()}
    return {"runs": runs, "latency": latency, "lead": lead_id, "chromium": version,
            "cold": summarize(raw["cold"]), "warm": summarize(raw["warm"]),
            "weight": weigh(raw["cold"][0], sizes)}


def run(args: argparse.Namespace, log=print) -> dict[str, Any]:
    """Start the simulator and Lead Card, install, measure; the figures (stops everything)."""
    from bench.config import PORTAL, config_from_args
    from bench.config import parse_args as bench_args
    from bench.phases import install
    from bench.servers import SUBJECTS, Procs, Sim, start_app
    from devtools.harness import free_ports

    tmp = Path(tempfile.mkdtemp(prefix="leadcard-paint-"))
    cfg = config_from_args(bench_args(["--quick", "--latency", str(args.latency),
                                       "--lead", str(args.lead)]), tmp)
    subject = SUBJECTS["leadcard"]
    (tmp / subject.key).mkdir(parents=True)
    procs = Procs()
    try:
        (app_port,) = free_ports(1)
        app_url = f"http://127.0.0.1:{app_port}"
        sim = Sim(procs, app_url, tmp / "simulator.log", cfg.sim_server, cfg.lead_id)
        try:
            sim.knobs(latency=cfg.latency, oauth_latency=cfg.latency)
            sim.knobs(portal=PORTAL, latency=cfg.latency, rate_limit=False)
            install(sim, start_app(procs, cfg, subject, sim, app_port))
            log(f"app {app_url}; portal {sim.portal['base_url']}; injected latency "
                f"{cfg.latency * 1000:.0f} ms")
            return phase_paint(sim.portal["base_url"], app_url, cfg.lead_id, args.runs,
                               cfg.latency, log)
        finally:
            sim.close()
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.paint", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="cold+warm view pairs (default 15)")
    ap.add_argument("--latency", type=float, default=0.05,
                    help="injected upstream latency, s (default 0.05, as bench.run)")
    ap.add_argument("--lead", type=int, default=101, help="lead viewed (default 101, the rich one)")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/performance.md")
    args = ap.parse_args(argv)
    argv_used = argv if argv is not None else sys.argv[1:]
    command = ".venv/bin/python -m bench.paint" + "".join(" " + shlex.quote(a) for a in argv_used)
    results = run(args)
    results["date"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print()
    print(render_text(results))
    if not args.no_doc:
        doc = ROOT / "docs" / "performance.md"
        write_doc(doc, render_markdown(results, command))
        print(f"results written to {doc.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
