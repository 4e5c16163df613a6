"""bench/paint.py: its arithmetic and report — medians, page weight, the docs block (no browser)."""

import gzip
import math

import brotli

from bench.paint import (
    BEGIN,
    END,
    METRICS,
    compressed_sizes,
    kind_of,
    render_markdown,
    render_text,
    replace_block,
    summarize,
    timing_rows,
    weigh,
    weight_rows,
)

APP = "http://127.0.0.1:9000"
SDK = APP + "/static/vendor/b24jssdk-2.2.0.min.js?v=1"


def _sample(fcp=200.0, fitted=300.0) -> dict:
    return {"responseStart": 70.0, "responseEnd": 80.0, "domContentLoaded": 150.0, "load": 160.0,
            "fcp": fcp, "fitted": fitted,
            "document": {"url": APP + "/placement?DOMAIN=x", "transfer": 1300, "encoded": 1000,
                         "decoded": 1000},
            "resources": [
                {"url": APP + "/static/css/card.css?v=2", "transfer": 400, "encoded": 100,
                 "decoded": 900},
                {"url": SDK, "transfer": 900, "encoded": 600, "decoded": 4000},
                {"url": APP + "/static/js/frame.js?v=3", "transfer": 350, "encoded": 50,
                 "decoded": 300},
            ]}


def test_summarize_median_and_p90_per_metric():
    samples = [_sample(fcp=v) for v in (100.0, 200.0, 300.0, 400.0, 500.0)]
    out = summarize(samples)
    assert set(out) == {k for k, _ in METRICS}
    assert out["fcp"] == {"median": 300.0, "p90": 460.0, "n": 5}
    assert out["load"]["median"] == 160.0


def test_summarize_skips_missing_values():
    out = summarize([_sample(fitted=None), _sample(fitted=250.0)])
    assert out["fitted"] == {"median": 250.0, "p90": 250.0, "n": 1}
    none = summarize([_sample(fitted=None)])["fitted"]
    assert none["n"] == 0 and math.isnan(none["median"])


def test_kind_of():
    assert kind_of(APP + "/placement?DOMAIN=x&LANG=en") == "html"
    assert kind_of(APP + "/") == "html"
    assert kind_of(APP + "/static/css/card.css?v=1") == "css"
    assert kind_of(SDK) == "js"
    assert kind_of(APP + "/favicon.png") == "other"


def test_weigh_totals_kinds_and_the_libraries_share():
    sizes = {SDK: ("br", 4000, 1200, 600), APP + "/placement?DOMAIN=x": ("", 1000, 400, 300)}
    w = weigh(_sample(), sizes)
    assert [f["name"] for f in w["files"]] == ["placement", "card.css", "b24jssdk-2.2.0.min.js",
                                               "frame.js"]
    assert w["files"][0]["encoding"] == "identity" and w["files"][2]["encoding"] == "br"
    assert w["kinds"]["html"] == {"transfer": 1300, "served": 1000, "decoded": 1000, "gzip": 400,
                                  "brotli": 300}
    assert w["kinds"]["js"]["served"] == 650
    assert "other" not in w["kinds"]
    assert w["total"]["transfer"] == 1300 + 400 + 900 + 350
    assert w["sdk"]["served"] == 600
    assert w["sdk_share"]["served"] == 600 / (1000 + 100 + 600 + 50)
    # files without a measured body count their decoded size in the compressed columns
    assert w["files"][1]["gzip"] == 900


def test_compressed_sizes_are_real_gzip_and_brotli():
    body = b"<p>Lead Card</p>" * 200
    gz, br = compressed_sizes(body)
    assert gz == len(gzip.compress(body, 9, mtime=0)) and br == len(brotli.compress(body, quality=11))
    assert br < gz < len(body)


def _results() -> dict:
    s = summarize([_sample(), _sample(fcp=220.0)])
    return {"runs": 2, "latency": 0.05, "lead": 101, "chromium": "140.0", "date": "2026-12-03 14:00 UTC",
            "cold": s, "warm": s, "weight": weigh(_sample(), {})}


def test_rows_and_rendering():
    res = _results()
    rows = timing_rows(res)
    assert [r[0] for r in rows] == [label for _, label in METRICS]
    assert rows[2][1:] == ["210", "218", "210", "218"]   # fcp: median, p90 of 200 and 220
    weights = weight_rows(res["weight"])
    assert weights[-1][0] == "frame library's share" and weights[-1][2] == "34 %"   # 600 / 1750
    md = render_markdown(res, ".venv/bin/python -m bench.paint --runs 2")
    assert md.startswith(BEGIN) and md.endswith(END)
    assert "`.venv/bin/python -m bench.paint --runs 2`" in md and "Chromium 140.0" in md
    assert "| first contentful paint | 210 | 218 | 210 | 218 |" in md
    text = render_text(res)
    assert "first contentful paint" in text and "|" not in text


def test_rendering_a_metric_without_samples():
    res = _results()
    res["warm"] = summarize([_sample(fitted=None)])
    assert timing_rows(res)[-1][3:] == ["–", "–"]


def test_replace_block_in_place_under_its_heading_or_appended():
    block = f"{BEGIN}\nnew\n{END}"
    old = f"# Performance\n\n## What the salesperson feels\n\nintro\n\n{BEGIN}\nold\n{END}\n\nafter\n"
    assert replace_block(old, block) == old.replace("old", "new")
    heading_only = "# Performance\n\n## What the salesperson feels\n\nintro\n"
    out = replace_block(heading_only, block)
    assert out.index("## What the salesperson feels") < out.index(BEGIN) < out.index("intro")
    appended = replace_block("# Performance\n", block)
    assert appended == f"# Performance\n\n## What the salesperson feels\n\n{block}\n"
