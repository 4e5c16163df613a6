"""crm.settings.mode.get (api-reference/crm/crm-settings-mode-get.md) and its /_sim/ switch."""

from __future__ import annotations

import pytest
import requests

MODE = "crm.settings.mode.get"


def test_mode_is_classic_by_default_for_any_user(rest, token):
    for user in (1, 2):
        r = rest("a", MODE, token("a", user))
        assert r.status_code == 200
        body = r.json()
        assert body["result"] == 1 and set(body) == {"result", "time"}


def test_control_api_switches_one_portal(sim, rest, token):
    ctl = sim.oauth_url + "/_sim/crm_mode"
    assert requests.post(ctl, json={"portal": "a", "mode": 2}, timeout=5).json() == {"portal": "a", "mode": 2}
    assert requests.get(ctl, params={"portal": "a"}, timeout=5).json()["mode"] == 2
    assert rest("a", MODE, token("a", 2)).json()["result"] == 2
    assert rest("b", MODE, token("b", 1)).json()["result"] == 1  # per portal
    assert requests.post(ctl, json={"portal": "a", "mode": 3}, timeout=5).status_code == 400
    assert requests.post(ctl, json={"portal": "zz", "mode": 2}, timeout=5).status_code == 400
    sim.set_crm_mode("a", 1)
    assert rest("a", MODE, token("a", 1)).json()["result"] == 1


def test_mode_in_a_batch_and_reset_with_the_knobs(sim, rest, token):
    sim.set_crm_mode("a", 2)
    r = rest("a", "batch", token("a", 1), halt=0, cmd={"m": MODE})
    assert r.json()["result"]["result"]["m"] == 2
    sim.reset(knobs=True)
    assert rest("a", MODE, token("a", 1)).json()["result"] == 1


def test_bad_mode_refused_in_python(sim):
    with pytest.raises(ValueError):
        sim.set_crm_mode("a", 0)
