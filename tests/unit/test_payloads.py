"""Parsing of what Bitrix24 POSTs: real payloads accepted, malformed ones refused."""


import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadcard.bitrix24.payloads import (
    lead_id_of,
    parse_event,
    parse_frame,
    parse_placement,
    unflatten,
)
from leadcard.core.errors import BadPayload
from tests.conftest import load_payload


def _flatten(prefix, value, out):
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}[{k}]" if prefix else k, v, out)
    else:
        out[prefix] = str(value)
    return out


def test_real_lead_tab_post_parses():
    doc = load_payload("placement_crm_lead_detail_tab_post.docs.json")
    req = parse_placement(doc["query"], doc["form"])
    assert req.lead_id == 6591
    assert req.frame.member_id == "da45a03b265edd8787f8a258d793cc5d"
    assert req.frame.domain == "xxx.bitrix24.com"
    assert req.frame.auth_expires == 3600
    assert req.frame.application_token == ""  # older portals don't post it


def test_install_frame_post_parses_with_application_token():
    doc = load_payload("install_frame_post.docs.json")
    frame = parse_frame(doc["query"], doc["form"])
    assert frame.placement == "DEFAULT"
    assert frame.application_token == "ec1b2074a9d3f5c81b6e40d27a95cf38"
    assert frame.license_status == "F"


def test_secrets_do_not_show_in_repr():
    doc = load_payload("install_frame_post.docs.json")
    frame = parse_frame(doc["query"], doc["form"])
    text = repr(frame)
    for secret in (doc["form"]["AUTH_ID"], doc["form"]["REFRESH_ID"], doc["form"]["APPLICATION_TOKEN"]):
        assert secret not in text


@pytest.mark.parametrize(
    "options",
    [None, "", "not json", "[]", '"6591"', "{}", '{"ID": ""}', '{"ID": "0"}', '{"ID": "-5"}',
     '{"ID": "12a"}', '{"ID": 1.5}', '{"ID": true}', '{"ID": "١٢"}', '{"ID": "99999999999999"}',
     '{"ID": null}', '{"ID": [1]}', '{"ID": "1' + "0" * 5000 + '"}'],
)
def test_bad_placement_options_are_refused(options):
    with pytest.raises(BadPayload):
        lead_id_of(options)


@pytest.mark.parametrize("raw, expected", [('{"ID":"6591"}', 6591), ('{"ID": 7}', 7),
                                           ('{"ID":"28","URI":"\\/crm\\/lead\\/details\\/28\\/"}', 28)])
def test_good_placement_options(raw, expected):
    assert lead_id_of(raw) == expected


@given(st.text(max_size=300))
def test_lead_id_parser_never_crashes(raw):
    try:
        value = lead_id_of(raw)
    except BadPayload:
        return
    assert isinstance(value, int) and value > 0


@pytest.mark.parametrize("field, value", [
    ("member_id", ""), ("member_id", "../../etc"), ("AUTH_ID", ""), ("AUTH_ID", "a b"),
    ("PLACEMENT", "CRM_DEAL_DETAIL_TAB"), ("AUTH_EXPIRES", "soon"), ("REFRESH_ID", "<x>"),
])
def test_bad_frame_fields_are_refused(field, value):
    doc = load_payload("placement_crm_lead_detail_tab_post.docs.json")
    form = dict(doc["form"], **{field: value})
    with pytest.raises(BadPayload):
        parse_placement(doc["query"], form)


def test_bad_domain_is_refused():
    doc = load_payload("placement_crm_lead_detail_tab_post.docs.json")
    with pytest.raises(BadPayload):
        parse_placement(dict(doc["query"], DOMAIN="evil.test/@x"), doc["form"])


def test_unknown_lang_falls_back_to_english():
    doc = load_payload("placement_crm_lead_detail_tab_post.docs.json")
    req = parse_placement(dict(doc["query"], LANG="<script>"), doc["form"])
    assert req.frame.lang == "en"


def test_unflatten_php_keys():
    assert unflatten({"auth[member_id]": "m", "data[FIELDS][ID]": "5", "event": "X"}) == {
        "auth": {"member_id": "m"}, "data": {"FIELDS": {"ID": "5"}}, "event": "X"}


@pytest.mark.parametrize("name", ["onappuninstall_event.docs.json", "onappinstall_event.docs.json",
                                  "onappinstall_event.phpsdk_fixture.json"])
def test_real_events_parse(name):
    doc = load_payload(name)
    event = parse_event(_flatten("", doc, {}))
    assert event.name == doc["event"].upper()
    assert event.member_id == doc["auth"]["member_id"]
    assert event.application_token == doc["auth"]["application_token"]


def test_uninstall_clean_flag():
    doc = load_payload("onappuninstall_event.docs.json")
    assert parse_event(_flatten("", doc, {})).clean is True
    doc["data"]["CLEAN"] = 0
    assert parse_event(_flatten("", doc, {})).clean is False


@pytest.mark.parametrize("form", [{}, {"event": "ONAPPUNINSTALL"},
                                  {"event": "ONAPPUNINSTALL", "auth": "x"},
                                  {"event": "x y", "auth[member_id]": "a223c6b3710f85df22e9377d6c4f7553"},
                                  {"event": "ONAPPUNINSTALL", "auth[member_id]": "!"}])
def test_bad_events_are_refused(form):
    with pytest.raises(BadPayload):
        parse_event(form)
