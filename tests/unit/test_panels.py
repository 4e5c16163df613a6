"""card/panels.py and flows/lead_context.py: each panel's model from raw Bitrix24 answers (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

from leadcard.card.context import Context
from leadcard.card.model import LeadContext, ReferenceData
from leadcard.card.panels import build_panels
from leadcard.core import errors
from leadcard.flows import lead_context

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
LEAD = {"ID": "101", "CURRENCY_ID": "EUR", "STATUS_SEMANTIC_ID": "P",
        "DATE_CREATE": "2026-11-22T12:00:00+00:00", "MOVED_TIME": "2026-11-30T12:00:00+00:00",
        "LAST_ACTIVITY_TIME": "2026-12-01T12:00:00+00:00",
        "PHONE": [{"VALUE": "+44 20 7946 0123"}], "EMAIL": []}
USERS = {"2": {"ID": "2", "NAME": "Ben", "LAST_NAME": "Ortiz"}}


def panels(data: LeadContext, lead: dict | None = None, locale: str = "en"):
    ref = ReferenceData(users=USERS, context=data)
    return build_panels(Context(lead or LEAD, ref, locale), data, NOW)


def activity(aid, deadline, *, type_id="6", provider="CRM_TODO", direction="0", responsible="2"):
    return {"ID": aid, "TYPE_ID": type_id, "PROVIDER_ID": provider, "DIRECTION": direction,
            "SUBJECT": f"Subject {aid}", "DEADLINE": deadline, "END_TIME": deadline,
            "RESPONSIBLE_ID": responsible}


def test_next_steps_overdue_first_then_by_deadline_with_names():
    p = panels(LeadContext(open_activities=[
        activity("1", "2026-12-01T09:00:00+00:00"),  # overdue
        activity("2", "2026-12-04T09:00:00+00:00", type_id="2", provider="CALL", direction="2"),
    ]))
    assert [a.subject for a in p.next_steps] == ["Subject 1", "Subject 2"]
    assert [a.overdue for a in p.next_steps] == [True, False]
    assert p.next_steps[0].kind == "todo" and p.next_steps[1].kind == "call_out"
    assert p.next_steps[0].responsible.text == "Ben Ortiz"
    assert p.next_steps[0].relative == "1 day ago" and p.next_steps[1].relative == "in 2 days"


def test_unknown_responsible_is_a_neutral_label():
    p = panels(LeadContext(open_activities=[activity("1", "2026-12-04T09:00:00+00:00",
                                                     responsible="19")]))
    assert p.next_steps[0].responsible.text == "User #19"
    assert p.next_steps[0].responsible.b24_path is None


def test_history_kinds_and_comment_text_reduced():
    p = panels(LeadContext(
        done_activities=[activity("3", "2026-11-30T10:00:00+00:00", type_id="4",
                                  provider="CRM_EMAIL", direction="1"),
                         activity("4", "2026-11-29T10:00:00+00:00", type_id="1",
                                  provider="CRM_MEETING")],
        comments=[{"ID": "7", "COMMENT": "<script>x()</script>[B]Signed[/B] <b>today</b>",
                   "CREATED": "2026-12-01T10:00:00+00:00", "AUTHOR_ID": "2"}]))
    assert [a.kind for a in p.history] == ["email_in", "meeting"]
    assert p.comments[0].text == "Signed today"
    assert p.comments[0].author.text == "Ben Ortiz"


def test_duplicates_named_and_the_rest_counted():
    p = panels(LeadContext(
        duplicates_found={"lead": [108, 109], "contact": [15], "company": []},
        duplicates_named={"lead": [{"id": 109, "title": "Newsletter sign-up"}],
                          "contact": [{"id": 15, "name": "Marta", "lastName": "Hoffmann"}]}))
    assert [(d.type_label, d.value.text, d.value.b24_path) for d in p.duplicates] == [
        ("Lead", "Newsletter sign-up", "/crm/lead/details/109/"),
        ("Contact", "Marta Hoffmann", "/crm/contact/details/15/")]
    assert p.duplicates_hidden == "1 more you cannot open"


def test_products_in_the_leads_currency_with_a_total():
    p = panels(LeadContext(products=[
        {"productName": "Unit", "price": 890.0, "quantity": 40, "measureName": "pcs"},
        {"productName": "", "productId": 9, "price": 0.5, "quantity": 3}]))
    assert [(r.name, r.quantity, r.price, r.total) for r in p.products] == [
        ("Unit", "40 pcs", "€890.00", "€35,600.00"), ("Product #9", "3", "€0.50", "€1.50")]
    assert p.products_total == "€35,601.50"


def test_what_came_of_it_only_for_a_converted_lead():
    converted = {**LEAD, "STATUS_SEMANTIC_ID": "S"}
    came = {"deal": [{"id": 301, "title": "Cold chain"}], "contact": [], "company": []}
    p = panels(LeadContext(came=came), converted)
    assert p.show_came and [c.value.b24_path for c in p.came] == ["/crm/deal/details/301/"]
    assert panels(LeadContext(came={}), converted).came_hidden  # converted, nothing readable
    assert not panels(LeadContext()).show_came


def test_time_facts_in_the_viewers_language():
    assert panels(LeadContext()).facts == (
        ("Age", "1 week"), ("In this stage", "2 days"), ("Last activity", "1 day ago"))
    german = dict(panels(LeadContext(), locale="de").facts)
    assert german["Alter"] == "1 Woche" and german["Letzte Aktivität"] == "vor 1 Tag"


def test_collect_marks_only_the_failing_panel():
    commands = lead_context.context_commands(101)
    results = {"ctx_open": [activity("1", "2026-12-04T09:00:00+00:00")],
               "ctx_dup_phone": {"LEAD": [101, 108]}, "ctx_dup_email": [],
               "ctx_dupnames_lead": {"items": [{"id": 108, "title": "Fair"}, {"id": 5}]}}
    failures = {"ctx_products": errors.AccessDenied("no"), "ctx_comments": errors.PortalError("x")}
    data = lead_context.collect(results, failures, LEAD)
    assert data.state == {"products": "denied", "history": "failed"}
    assert data.duplicates_found["lead"] == [108]  # the lead itself left out
    assert data.duplicates_named["lead"] == [{"id": 108, "title": "Fair"}]  # only found ids
    assert set(commands) >= {"ctx_open", "ctx_done", "ctx_comments", "ctx_products", "ctx_users"}


def test_no_phones_means_no_duplicates_rather_than_a_failure():
    refused = errors.PortalError("Communication values are not defined.")
    data = lead_context.collect({}, {"ctx_dup_email": refused}, LEAD)  # LEAD has no e-mail
    assert "duplicates" not in data.state
    data = lead_context.collect({}, {"ctx_dup_phone": refused}, LEAD)  # but it has a phone
    assert data.state == {"duplicates": "failed"}


def test_duplicate_lookups_reference_the_leads_own_phones_and_emails():
    commands = lead_context.context_commands(101)
    method, params = commands["ctx_dup_phone"]
    assert method == "crm.duplicate.findbycomm" and params["type"] == "PHONE"
    assert params["values"][0] == "$result[lead][PHONE][0][VALUE]"
    assert len(params["values"]) <= 20  # findbycomm's limit
    assert len(commands) + 1 <= 50  # with the lead: within one batch


def test_encoded_commands_are_the_commands_as_a_batch_sends_them():
    from leadcard.bitrix24.rest import php_query
    encoded = lead_context.encoded_context_commands(4242)
    assert dict(encoded) == {k: f"{m}?{php_query(p)}"
                             for k, (m, p) in lead_context.context_commands(4242).items()}
    assert lead_context.encoded_context_commands(4242) is encoded  # kept per lead
    assert "4242" in encoded["ctx_open"] and "4242" not in lead_context.encoded_context_commands(7)["ctx_open"]
