"""card.build.build_card: real Bitrix24 payloads, hostile data, odd shapes. Pure, no Flask."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadcard.card import fields as card_fields
from leadcard.card import model as cards
from leadcard.card import values as card_values
from leadcard.card.build import build_card
from leadcard.card.fields import FIELD_LABELS
from leadcard.card.model import ReferenceData

PAYLOADS = Path(__file__).resolve().parent.parent / "fixtures" / "payloads"
B24_PATH = re.compile(
    r"^/(?:crm/(?:lead|deal|contact|company)/details/\d+/|crm/type/\d+/details/\d+/|company/personal/user/\d+/)$"
)


def load(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


def lead_123() -> dict:
    return load("crm_lead_get_success_id123.docs.json")["result"]


def lead_35943() -> dict:
    return load("crm_lead_get_via_batch_id35943.fast_bitrix24_real.json")["result"]["result"][
        "order0"
    ]


def users() -> dict[str, dict]:
    return {u["ID"]: u for u in load("user_get_response.docs.json")["result"]}


def lead_statuses() -> list[dict]:
    return load("crm_status_list_lead_status_abridged.docs.json")["result"]


def all_fields(card: cards.Card) -> list[cards.Field]:
    return [f for s in card.sections for f in s.fields] + list(card.extra)


def field(card: cards.Card, code: str) -> cards.Field:
    matches = [f for f in all_fields(card) if f.code == code]
    assert matches, f"{code} not on the card"
    return matches[0]


def texts(card: cards.Card) -> list[str]:
    out = [card.title, card.amount or "", card.person or "", card.company or ""]
    out += [v.text for f in all_fields(card) for v in f.values]
    return out


def every_value(card: cards.Card):
    return [v for f in all_fields(card) for v in f.values]


# --- Reference data and the fetch helpers ---


def test_reference_data_defaults_are_empty_and_independent():
    a, b = ReferenceData(), ReferenceData()
    assert a.fields == {} and a.statuses == {} and a.currencies == []
    assert a.users == {} and a.companies == {} and a.contacts == {}
    assert a.fields is not b.fields


def test_user_ids_of_real_payloads():
    assert card_fields.user_ids_of(lead_123()) == {"1"}
    # The 2022 capture has no LAST_ACTIVITY_BY at all.
    assert card_fields.user_ids_of(lead_35943()) == {"1", "19"}


@pytest.mark.parametrize(
    "value, expected",
    [
        ("7", "7"),
        (" 7 ", "7"),
        ("007", "7"),
        (7, "7"),
        ("0", None),
        ("", None),
        (None, None),
        ("-3", None),
        ("abc", None),
        ("1.5", None),
        (True, None),
        ("<script>", None),
        ([], None),
    ],
)
def test_positive_id(value, expected):
    assert card_values.positive_id(value) == expected


def test_user_ids_of_skips_empty_and_junk():
    lead = {
        "ASSIGNED_BY_ID": "5",
        "CREATED_BY_ID": "0",
        "MODIFY_BY_ID": None,
        "MOVED_BY_ID": "x",
        "LAST_ACTIVITY_BY": "12",
        "COMPANY_ID": "3",
    }
    assert card_fields.user_ids_of(lead) == {"5", "12"}


def test_company_and_contact_ids():
    assert card_fields.company_id_of(lead_123()) is None
    assert card_fields.contact_id_of(lead_123()) is None
    assert card_fields.company_id_of({"COMPANY_ID": "0"}) is None
    assert card_fields.company_id_of({"COMPANY_ID": "12"}) == "12"
    assert card_fields.contact_id_of({"CONTACT_ID": "9"}) == "9"
    assert card_fields.contact_id_of({}) is None


# --- The docs example (id 123) ---


def test_docs_lead_header_and_people():
    ref = ReferenceData(statuses={"STATUS": lead_statuses()}, users=users())
    card = build_card(lead_123(), ref, "en")
    assert card.id == "123"
    assert card.title == "Lead #1591"
    # IN_PROCESS is not in the abridged dictionary: the code, semantic from the lead.
    assert card.stage.code == "IN_PROCESS" and card.stage.name == "IN_PROCESS"
    assert card.stage.semantic == "P" and card.stage.color is None
    assert card.amount is None  # "0.00" is "not filled"
    assert card.person is None  # NAME is ""
    responsible = field(card, "ASSIGNED_BY_ID").values[0]
    assert responsible.text == "Vadim Valeev"
    assert responsible.b24_path == "/company/personal/user/1/"
    assert responsible.kind == "user" and responsible.initials == "VV"
    created = field(card, "CREATED_BY_ID")
    assert [v.kind for v in created.values] == ["date", "user"]
    assert created.values[0].text == "May 23, 2024, 6:18\u202fPM"


def test_docs_lead_phone_and_open_channel():
    card = build_card(lead_123(), ReferenceData(), "en")
    phone = field(card, "PHONE").values[0]
    assert (
        phone.text == "+15454777777" and phone.href == "tel:+15454777777" and phone.note == "Other"
    )
    im = field(card, "IM").values[0]
    assert im.href is None and im.b24_path is None
    assert im.text == "Live chat, open channel 1" and im.note == "Open channel"
    assert "imol|" not in im.text


def test_docs_lead_show_all_fields():
    card = build_card(lead_123(), ReferenceData(), "en")
    extra = {f.code: [v.text for v in f.values] for f in card.extra}
    assert extra["ID"] == ["123"]
    assert extra["OPENED"] == ["Yes"]
    assert extra["IS_RETURN_CUSTOMER"] == ["No"]
    assert extra["OPPORTUNITY"] == ["€0.00"]
    assert extra["CURRENCY_ID"] == ["Euro (EUR)"]
    # Nulls never show, and nothing appears twice.
    assert "ORIGINATOR_ID" not in extra and "COMMENTS" not in extra
    codes = [f.code for f in all_fields(card)]
    assert len(codes) == len(set(codes))


# --- The real capture (id 35943, Russian portal) ---


def test_real_lead_with_entity_items_dictionary():
    batch = load("batch_crm_status_entity_items_status_source.fast_bitrix24_real.json")["result"][
        "result"
    ]
    ref = ReferenceData(
        statuses={"STATUS": batch["statuses"], "SOURCE": batch["sources"]}, users=users()
    )
    card = build_card(lead_35943(), ref, "ru")
    assert card.title.startswith("7-я Кожуховская ул.")
    assert card.stage.name == "Задвоенные лиды"  # STATUS_ID "3"
    assert card.amount.replace("\u00a0", " ") == "3 607 999,00 ₽"
    assert card.ui_locale == "ru"
    assert card.section("deal").title == "Сумма сделки"
    # User 19 is not in user.get's answer: neutral label, no profile link.
    responsible = field(card, "ASSIGNED_BY_ID").values[0]
    assert responsible.text == "Пользователь №19" and responsible.b24_path is None
    # Known user 1 still resolves.
    assert field(card, "CREATED_BY_ID").values[-1].text == "Vadim Valeev"
    assert card.section("contact") is None  # nothing filled: the section is hidden
    assert [v.text for v in field(card, "OPENED").values] == ["Нет"]


# --- Stage pill ---


def test_stage_colour_and_semantics_from_dictionary():
    ref = ReferenceData(statuses={"STATUS": lead_statuses()})
    card = build_card({"STATUS_ID": "CONVERTED"}, ref, "en")
    assert card.stage.name == "Converted"
    assert card.stage.semantic == "S" and card.stage.semantic_label == "Successful"
    assert card.stage.color == "#37b44a"
    assert card_values.contrast_ratio(card.stage.color, card.stage.text_color) >= 4.5
    junk = build_card({"STATUS_ID": "JUNK", "STATUS_SEMANTIC_ID": "F"}, ref, "de")
    assert junk.stage.semantic == "F" and junk.stage.semantic_label == "Nicht erfolgreich"


def test_stage_colour_from_extra_and_hostile_colours():
    items = [
        {
            "STATUS_ID": "A",
            "NAME": "A",
            "COLOR": None,
            "EXTRA": {"SEMANTICS": "failure", "COLOR": "#ABCDEF"},
        },
        {"STATUS_ID": "B", "NAME": "B", "COLOR": "red;}</style><script>alert(1)</script>"},
        {"STATUS_ID": "C", "NAME": "C", "COLOR": "#12345"},
        {"STATUS_ID": "D", "NAME": "D", "COLOR": "url(javascript:alert(1))"},
    ]
    ref = ReferenceData(statuses={"STATUS": items})
    a = build_card({"STATUS_ID": "A"}, ref, "en").stage
    assert a.color == "#abcdef" and a.semantic == "F"
    for code in "BCD":
        stage = build_card({"STATUS_ID": code}, ref, "en").stage
        assert stage.color is None and stage.text_color is None


def test_unknown_stage_code_is_shown_as_text():
    card = build_card({"STATUS_ID": "UC_X1Y2", "STATUS_SEMANTIC_ID": "Q"}, ReferenceData(), "en")
    assert card.stage.name == "UC_X1Y2" and card.stage.semantic == "P"


@settings(max_examples=200)
@given(st.from_regex(r"#[0-9a-f]{6}", fullmatch=True))
def test_pill_text_always_readable(color):
    assert card_values.contrast_ratio(color, card_values.text_color_on(color)) >= 4.5


# --- Contact, company and money ---


def rich_lead() -> dict:
    return {
        "ID": "22",
        "TITLE": "From website: Klaus Weber",
        "HONORIFIC": "HNR_EN_1",
        "NAME": "Klaus",
        "SECOND_NAME": None,
        "LAST_NAME": "Weber",
        "POST": "Buyer",
        "COMPANY_TITLE": None,
        "COMPANY_ID": "5",
        "CONTACT_ID": "9",
        "BIRTHDATE": "1980-04-12T00:00:00+02:00",
        "SOURCE_ID": "WEB",
        "SOURCE_DESCRIPTION": "Pricing form",
        "STATUS_ID": "NEW",
        "OPPORTUNITY": "48250.00",
        "CURRENCY_ID": "EUR",
        "IS_MANUAL_OPPORTUNITY": "Y",
        "IS_RETURN_CUSTOMER": "Y",
        "COMMENTS": "[B]Call[/B] after 14:00<br>Budget &amp; scope ok",
        "ADDRESS": "Hauptstraße 5",
        "ADDRESS_CITY": "München",
        "ADDRESS_POSTAL_CODE": "80331",
        "ADDRESS_COUNTRY": "Deutschland",
        "UTM_SOURCE": "google",
        "UTM_MEDIUM": "cpc",
        "ASSIGNED_BY_ID": "3",
        "DATE_CREATE": "2024-05-23T18:18:25+02:00",
        "CREATED_BY_ID": "1",
        "PHONE": [
            {"ID": "1", "VALUE_TYPE": "MOBILE", "VALUE": "+49 (170) 765-43-21", "TYPE_ID": "PHONE"}
        ],
        "EMAIL": [
            {"ID": "2", "VALUE_TYPE": "WORK", "VALUE": "k.weber@example.de", "TYPE_ID": "EMAIL"}
        ],
        "WEB": [
            {"ID": "3", "VALUE_TYPE": "WORK", "VALUE": "www.example.de/about", "TYPE_ID": "WEB"}
        ],
    }


def rich_ref() -> ReferenceData:
    return ReferenceData(
        statuses={
            "STATUS": lead_statuses(),
            "SOURCE": [{"STATUS_ID": "WEB", "NAME": "Website"}],
            "HONORIFIC": [{"STATUS_ID": "HNR_EN_1", "NAME": "Mr."}],
        },
        users=users(),
        companies={"5": {"ID": "5", "TITLE": "Weber GmbH"}},
        contacts={"9": {"ID": "9", "NAME": "Klaus", "LAST_NAME": "Weber"}},
    )


def test_header_of_a_filled_lead():
    card = build_card(rich_lead(), rich_ref(), "de")
    assert card.person == "Mr. Klaus Weber"
    assert card.company == "Weber GmbH"  # COMPANY_TITLE empty: the linked company's title
    assert card.amount == "48.250,00\u00a0€"
    assert card.stage.name == "Not processed" and card.stage.color == "#00ffff"
    assert not card.is_empty


def test_sections_order_and_titles_in_german():
    card = build_card(rich_lead(), rich_ref(), "de")
    assert [s.key for s in card.sections] == [
        "contact",
        "company",
        "deal",
        "stage",
        "comments",
        "address",
        "marketing",
        "people",
    ]
    assert [s.title for s in card.sections][:3] == [
        "Ansprechpartner",
        "Unternehmen",
        "Auftragswert",
    ]
    assert field(card, "PHONE").values[0].note == "Mobil"
    assert field(card, "IS_MANUAL_OPPORTUNITY").values[0].text == "Manuell eingegeben"


def test_contact_links_and_crm_paths():
    card = build_card(rich_lead(), rich_ref(), "en")
    phone = field(card, "PHONE").values[0]
    assert phone.href == "tel:+491707654321"
    assert field(card, "EMAIL").values[0].href == "mailto:k.weber@example.de"
    web = field(card, "WEB").values[0]
    assert web.href == "https://www.example.de/about" and web.external
    contact = field(card, "CONTACT_ID").values[0]
    assert contact.text == "Klaus Weber" and contact.b24_path == "/crm/contact/details/9/"
    company = field(card, "COMPANY_ID").values[0]
    assert company.text == "Weber GmbH" and company.b24_path == "/crm/company/details/5/"
    assert field(card, "BIRTHDATE").values[0].text == "Apr 12, 1980"
    for value in every_value(card):
        assert value.b24_path is None or B24_PATH.match(value.b24_path)


def test_company_title_and_linked_company_differ():
    lead = dict(rich_lead(), COMPANY_TITLE="Weber & Sons")
    card = build_card(lead, rich_ref(), "en")
    assert [f.code for f in card.section("company").fields] == ["COMPANY_TITLE", "COMPANY_ID"]
    assert card.company == "Weber & Sons"


def test_contact_ids_are_merged_with_contact_id():
    card = build_card({"CONTACT_ID": "9", "CONTACT_IDS": ["9"]}, rich_ref(), "en")
    assert [f.code for f in all_fields(card)] == ["CONTACT_ID"]
    assert field(card, "CONTACT_ID").label == "Linked contact"
    card = build_card({"CONTACT_ID": "9", "CONTACT_IDS": ["9", "11"]}, rich_ref(), "en")
    contacts = field(card, "CONTACT_ID")
    assert contacts.label == "Contacts"
    assert [v.text for v in contacts.values] == ["Klaus Weber", "Contact #11"]


def test_linked_ids_without_reference_data_get_fallback_names():
    card = build_card({"COMPANY_ID": "5", "CONTACT_ID": "9"}, ReferenceData(), "en")
    assert field(card, "COMPANY_ID").values[0].text == "Company #5"
    assert field(card, "CONTACT_ID").values[0].text == "Contact #9"


def test_stage_source_comment_address_marketing():
    card = build_card(rich_lead(), rich_ref(), "en")
    assert [v.text for v in field(card, "SOURCE_ID").values] == ["Website"]
    assert field(card, "IS_RETURN_CUSTOMER").values[0].text == "Yes"
    comment = field(card, "COMMENTS").values[0]
    assert comment.kind == "multiline" and comment.text == "Call after 14:00\nBudget & scope ok"
    assert field(card, "ADDRESS").values[0].text == "Hauptstraße 5\n80331 München\nDeutschland"
    utm = field(card, "UTM_SOURCE")
    assert utm.label == "Ad system" and utm.hint == "utm_source" and utm.values[0].text == "google"


def test_unknown_source_code_and_unknown_honorific():
    lead = {"SOURCE_ID": "UC_77", "HONORIFIC": "HNR_XX", "NAME": "Ann"}
    card = build_card(lead, ReferenceData(), "en")
    assert field(card, "SOURCE_ID").values[0].text == "UC_77"
    assert card.person == "Ann"  # an unknown salutation code is not printed in the name


def test_formatting_follows_the_locale_and_texts_fall_back_to_english():
    # Dutch is no Bitrix24 language: Dutch numbers, English texts.
    card = build_card(rich_lead(), rich_ref(), "nl")
    assert card.ui_locale == "en" and card.locale == "nl"
    assert card.section("contact").title == "Contact person"
    assert card.amount == "€\u00a048.250,00"
    brazil = build_card(rich_lead(), rich_ref(), "pt_BR")  # a catalog of its own now
    assert brazil.ui_locale == "pt_BR" and brazil.section("contact").title != "Contact person"
    assert brazil.amount == "€\u00a048.250,00"


def test_currency_name_from_portal_list_for_unknown_codes():
    lead = {"OPPORTUNITY": "10", "CURRENCY_ID": "XBT"}
    ref = ReferenceData(currencies=[{"CURRENCY": "XBT", "FULL_NAME": "Bitcoin"}])
    card = build_card(lead, ref, "en")
    assert field(card, "CURRENCY_ID").values[0].text == "Bitcoin (XBT)"
    assert card.amount == "XBT\u00a010.00"


# --- Custom fields ---


def lead_fields_with_uf() -> dict:
    return load("crm_lead_fields_with_uf.fast_bitrix24_real.json")["result"]


def item_uf_meta() -> dict[str, dict]:
    """crm.item.fields examples re-keyed by their UF_* names (same metadata shape)."""
    raw = load("crm_item_fields_uf_examples.docs.json")
    return {meta["upperName"]: meta for meta in raw.values()}


def test_uf_labels_from_real_field_list():
    lead = {
        "UF_CRM_1594289616952": "Сокол",
        "UF_CRM_1594289659496": "3500000|RUB",
        "UF_CRM_1594290129890": "https://realty.example/ads/1",
        "UF_CRM_1605533620303": "javascript:alert(1)",
        "UF_CRM_1594289998726": "",
    }
    card = build_card(lead, ReferenceData(fields=lead_fields_with_uf()), "ru")
    custom = {f.code: f for f in card.section("custom").fields}
    assert custom["UF_CRM_1594289616952"].label == "Метро"
    assert custom["UF_CRM_1594289659496"].values[0].text.replace("\u00a0", " ") == "3 500 000,00 ₽"
    url = custom["UF_CRM_1594290129890"].values[0]
    assert url.href == "https://realty.example/ads/1"
    bad = custom["UF_CRM_1605533620303"].values[0]
    assert bad.href is None and bad.text == "javascript:alert(1)"
    assert "UF_CRM_1594289998726" not in custom  # empty is hidden
    # Order follows crm.lead.fields (the portal's order), not the lead's keys.
    assert list(custom) == [
        "UF_CRM_1594289616952",
        "UF_CRM_1594289659496",
        "UF_CRM_1594290129890",
        "UF_CRM_1605533620303",
    ]


def test_uf_enumeration_boolean_date_number_money_multiple():
    meta = item_uf_meta()
    lead = {
        "UF_CRM_44_1721812814433": "81",
        "UF_CRM_44_1721812935209": "0",
        "UF_CRM_44_1721812853419": "2024-07-24T00:00:00+03:00",
        "UF_CRM_44_1721812948498": "1234.5",
        "UF_CRM_44_1721812915476": "100|USD",
        "UF_CRM_44_1721812885588": ["https://a.example", "ftp://b.example", ""],
    }
    card = build_card(lead, ReferenceData(fields=meta), "de")
    custom = {f.code: f for f in card.section("custom").fields}
    assert custom["UF_CRM_44_1721812814433"].label == "Custom field (list)"
    assert [v.text for v in custom["UF_CRM_44_1721812814433"].values] == ["List item #3"]
    assert [v.text for v in custom["UF_CRM_44_1721812935209"].values] == ["Nein"]
    assert [v.text for v in custom["UF_CRM_44_1721812853419"].values] == ["24.07.2024"]
    assert [v.text for v in custom["UF_CRM_44_1721812948498"].values] == ["1.234,5"]
    assert [v.text for v in custom["UF_CRM_44_1721812915476"].values] == ["100,00\u00a0$"]
    links = custom["UF_CRM_44_1721812885588"].values
    assert [v.text for v in links] == ["https://a.example", "ftp://b.example"]
    assert [v.href for v in links] == ["https://a.example", None]


def test_uf_enumeration_unknown_item_and_multiple():
    meta = {
        "UF_CRM_E": {
            "type": "enumeration",
            "isMultiple": True,
            "formLabel": "Interests",
            "items": [{"ID": "1", "VALUE": "CRM"}, {"ID": "2", "VALUE": "Tasks"}],
        }
    }
    card = build_card({"UF_CRM_E": ["2", "1", "99"]}, ReferenceData(fields=meta), "en")
    assert [v.text for v in field(card, "UF_CRM_E").values] == ["Tasks", "CRM", "99"]


def test_uf_files_single_and_multiple():
    lead = load("crm_lead_get_uf_files_abridged.docs.json")["result"]
    card = build_card(lead, ReferenceData(), "es")  # no metadata: recognised by shape
    assert [v.text for v in field(card, "UF_CRM_LEAD_FILE").values] == ["Archivo n.º 37375"]
    files = field(card, "UF_CRM_LEAD_FILES").values
    assert [v.text for v in files] == ["Archivo n.º 37377"]
    assert all(v.kind == "file" and v.href is None for v in files)  # downloadUrl carries auth=


def test_uf_file_with_metadata_and_empty_list():
    meta = {"UF_CRM_F": {"type": "file", "isMultiple": True, "formLabel": "Docs"}}
    assert build_card({"UF_CRM_F": []}, ReferenceData(fields=meta), "en").section("custom") is None
    card = build_card(
        {"UF_CRM_F": [{"id": 5, "name": "offer.pdf"}, "7"]}, ReferenceData(fields=meta), "en"
    )
    assert [v.text for v in field(card, "UF_CRM_F").values] == ["offer.pdf", "File #7"]


def test_uf_labels_per_language_dicts():
    meta = {
        "UF_CRM_T": {
            "type": "string",
            "title": "UF_CRM_T",
            "formLabel": {"en": "Temperature", "de": "Temperatur", "la": "Temperatura", "ru": ""},
            "listLabel": {"ru": "Температура"},
        }
    }
    lead = {"UF_CRM_T": "hot"}
    assert (
        field(build_card(lead, ReferenceData(fields=meta), "de"), "UF_CRM_T").label == "Temperatur"
    )
    assert (
        field(build_card(lead, ReferenceData(fields=meta), "es"), "UF_CRM_T").label == "Temperatura"
    )
    assert (
        field(build_card(lead, ReferenceData(fields=meta), "ru"), "UF_CRM_T").label == "Температура"
    )
    assert (
        field(build_card(lead, ReferenceData(fields=meta), "pt_BR"), "UF_CRM_T").label
        == "Temperature"
    )
    # Without labels the code is the label (crm.lead.fields puts the code in "title").
    assert field(build_card(lead, ReferenceData(), "en"), "UF_CRM_T").label == "UF_CRM_T"


def test_uf_boolean_values():
    meta = {"UF_CRM_B": {"type": "boolean", "formLabel": "Consent"}}
    for raw, shown in (
        ("1", "Yes"),
        (1, "Yes"),
        ("Y", "Yes"),
        ("0", "No"),
        (0, "No"),
        (False, "No"),
    ):
        assert [
            v.text
            for v in field(
                build_card({"UF_CRM_B": raw}, ReferenceData(fields=meta), "en"), "UF_CRM_B"
            ).values
        ] == [shown]
    assert build_card({"UF_CRM_B": ""}, ReferenceData(fields=meta), "en").section("custom") is None


def test_uf_crm_links():
    meta = {
        "UF_CRM_LINKS": {
            "type": "crm",
            "isMultiple": True,
            "formLabel": "Related",
            "settings": {"LEAD": "Y", "CONTACT": "Y", "COMPANY": "Y", "DEAL": "Y"},
        },
        "UF_CRM_DEAL": {"type": "crm", "formLabel": "Deal", "settings": {"DEAL": "Y", "LEAD": "N"}},
    }
    lead = {
        "UF_CRM_LINKS": ["C_9", "CO_5", "L_3", "D_12", "T8a_4", "X_<script>", "C_0"],
        "UF_CRM_DEAL": "77",
    }
    card = build_card(lead, ReferenceData(fields=meta, contacts={"9": {"NAME": "Ann"}}), "en")
    values = field(card, "UF_CRM_LINKS").values
    assert [(v.text, v.b24_path) for v in values] == [
        ("Ann", "/crm/contact/details/9/"),
        ("Company #5", "/crm/company/details/5/"),
        ("Lead #3", "/crm/lead/details/3/"),
        ("Deal #12", "/crm/deal/details/12/"),
        ("Item #4", "/crm/type/138/details/4/"),
        ("X_<script>", None),
        ("C_0", None),
    ]
    assert field(card, "UF_CRM_DEAL").values[0].b24_path == "/crm/deal/details/77/"


def test_uf_employee_money_without_currency_address_and_unknown_type():
    meta = {
        "UF_CRM_EMP": {"type": "employee", "formLabel": "Partner"},
        "UF_CRM_M": {"type": "money", "formLabel": "Budget"},
        "UF_CRM_ADDR": {"type": "address", "formLabel": "Office"},
        "UF_CRM_ODD": {"type": "iblock_element", "formLabel": "Product"},
    }
    lead = {
        "UF_CRM_EMP": "3",
        "UF_CRM_M": "250",
        "UF_CRM_ADDR": "Main st 1|55.7;37.6|123",
        "UF_CRM_ODD": "42",
    }
    card = build_card(lead, ReferenceData(fields=meta, users=users()), "en")
    assert field(card, "UF_CRM_EMP").values[0].text == "John Smith"
    assert field(card, "UF_CRM_M").values[0].text == "250"
    assert field(card, "UF_CRM_ADDR").values[0].text == "Main st 1"
    assert field(card, "UF_CRM_ODD").values[0].text == "42"


# --- Hostile and odd data ---


XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def test_hostile_text_stays_plain_text():
    lead = dict(
        rich_lead(),
        TITLE=XSS,
        NAME='"><svg onload=alert(3)>',
        POST=XSS,
        UF_CRM_X=XSS,
        SOURCE_DESCRIPTION="javascript:alert(1)",
    )
    card = build_card(lead, rich_ref(), "en")
    # The model keeps the text verbatim; Jinja escapes it (test_templates.py).
    assert card.title == XSS
    assert '"><svg onload=alert(3)>' in card.person
    assert all(v.href is None for v in field(card, "UF_CRM_X").values)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "  javascript:alert(1)",
        "java\tscript:alert(1)",
        "java\nscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "//evil.example/x",
        "https://user:pw@evil.example/",
        "https://user@evil.example/",
        "https://@evil.example/",
        "https://ex\u00a0ample.com",
        "https://ex\u3000ample.com/",
        "https://example.com/\u2028x",
        "https://example.com/\u200bx",
        "https://example.com/" + "a" * 2100,
        "http:\\\\evil.example",
        "file:///etc/passwd",
        "https://",
        "http://exa mple.com",
        "https://ex\u0000ample.com",
        "<script>",
        "mailto:a@b.c",
        "tel:123",
        "https://evil.example:99999/",
        "",
    ],
)
def test_unsafe_websites_are_not_links(url):
    card = build_card({"WEB": [{"VALUE_TYPE": "WORK", "VALUE": url}]}, ReferenceData(), "en")
    for value in every_value(card):
        assert value.href is None


@pytest.mark.parametrize(
    "url, href",
    [
        ("https://example.com/a?b=c#d", "https://example.com/a?b=c#d"),
        ("HTTP://Example.com", "http://Example.com"),
        ("example.com", "https://example.com"),
        ("www.example.co.uk/path?q=1", "https://www.example.co.uk/path?q=1"),
    ],
)
def test_safe_websites_are_links(url, href):
    assert card_values.safe_web_url(url) == href


@settings(max_examples=300)
@given(st.text())
def test_safe_web_url_never_returns_anything_but_http(text):
    href = card_values.safe_web_url(text)
    assert href is None or (
        href.startswith(("http://", "https://"))
        and not any(ch.isspace() or ord(ch) < 32 for ch in href)
    )


@pytest.mark.parametrize(
    "value, href",
    [
        ("+7 (495) 123-45-67", "tel:+74951234567"),
        ("javascript:alert(1)", None),
        ("12", None),
        ("8 800 555+35+35", "tel:88005553535"),
        ('"><script>', None),
    ],
)
def test_phone_links(value, href):
    card = build_card({"PHONE": [{"VALUE_TYPE": "WORK", "VALUE": value}]}, ReferenceData(), "en")
    assert field(card, "PHONE").values[0].href == href


@pytest.mark.parametrize(
    "value, href",
    [
        ("a@b.example", "mailto:a@b.example"),
        ("a@b.example?cc=boss@evil.example", None),
        ("<script>@x.example", None),
        ("no-at-sign", None),
        ("a b@c.example", None),
    ],
)
def test_email_links(value, href):
    card = build_card({"EMAIL": [{"VALUE_TYPE": "WORK", "VALUE": value}]}, ReferenceData(), "en")
    assert field(card, "EMAIL").values[0].href == href


def test_im_values_are_never_links():
    ims = [
        {"VALUE_TYPE": t, "VALUE": v}
        for t, v in (
            ("OPENLINE", "imol|telegrambot|2|123456|15"),
            ("IMOL", "imol|unknownconnector|x|1|1"),
            ("TELEGRAM", "https://t.me/someone"),
            ("SKYPE", "javascript:alert(1)"),
            ("WEIRD", "x"),
        )
    ]
    card = build_card({"IM": ims}, ReferenceData(), "en")
    values = field(card, "IM").values
    assert all(v.href is None and v.b24_path is None for v in values)
    assert [v.text for v in values][:2] == ["Telegram, open channel 2", "unknownconnector"]
    assert values[-1].note == "Weird"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("[B]Comment about admin[/B]", "Comment about admin"),
        ("<p>a</p><p>b</p>", "a\n\nb"),
        ("x<br>y<br/>z", "x\ny\nz"),
        ("<script>alert(1)</script>ok<style>p{}</style>", "ok"),
        ("a &lt;b&gt; c &amp; d", "a <b> c & d"),
        ("[URL=javascript:alert(1)]click[/URL]", "click"),
        ("[QUOTE]q[/QUOTE]after", "q\nafter"),
        ("line1\r\nline2\n\n\n\nline3", "line1\nline2\n\nline3"),
        ("price < 5 and [x] > 3", "price < 5 and [x] > 3"),
        ('<img src=x onerror="alert(1)">', ""),
        ("[DISK FILE ID=n123] done", "done"),
    ],
)
def test_comments_become_plain_text(raw, expected):
    assert card_values.rich_text_to_plain(raw) == expected


def test_empty_lead_and_missing_keys():
    card = build_card({}, ReferenceData(), "en")
    assert card.title == "Untitled lead"
    assert card.stage is None and card.amount is None and card.person is None
    assert card.sections == () and card.extra == () and card.is_empty


def test_all_nulls():
    lead = dict.fromkeys(FIELD_LABELS, None)
    card = build_card(lead, ReferenceData(), "en")
    assert card.is_empty and card.extra == ()


def test_a_lead_with_only_a_stage_is_empty():
    card = build_card({"ID": "5", "STATUS_ID": "NEW", "OPENED": "Y"}, ReferenceData(), "en")
    assert card.is_empty and card.title == "Lead #5"
    assert [f.code for f in card.extra] == ["ID", "OPENED"]


def test_unknown_keys_are_ignored():
    card = build_card(
        {"TITLE": "T", "FOO_BAR": "secret", "ufCrm_1": "x", "PARENT_ID_1222": "5"},
        ReferenceData(),
        "en",
    )
    assert "secret" not in texts(card) and "x" not in texts(card)


def test_odd_shapes_do_not_crash():
    lead = {
        "TITLE": 12345,
        "PHONE": "+1 555",
        "EMAIL": [None, "x", {"VALUE": None}, {"VALUE": "a@b.example"}],
        "WEB": {"n0": {"VALUE": "https://ok.example"}},
        "IM": [{"VALUE": ["nested"]}],
        "OPPORTUNITY": "abc",
        "CURRENCY_ID": None,
        "DATE_CREATE": "not a date",
        "BIRTHDATE": "",
        "ASSIGNED_BY_ID": ["1"],
        "COMMENTS": {"html": "<b>x</b>"},
        "UF_CRM_X": {"a": 1, "b": {"c": 2}},
        "STATUS_ID": None,
        "CONTACT_IDS": ["9", "0", "x"],
    }
    ref = ReferenceData(
        fields={"UF_CRM_X": "not a dict"},
        statuses={"STATUS": ["junk", None, {"STATUS_ID": None}]},
        users={"1": {"NAME": None}},
    )
    card = build_card(lead, ref, "en")
    assert card.title == "12345"
    assert [v.text for v in field(card, "EMAIL").values] == ["a@b.example"]
    assert [v.href for v in field(card, "WEB").values] == ["https://ok.example"]
    assert [v.text for v in field(card, "CREATED_BY_ID").values] == ["not a date"]
    assert [v.b24_path for v in field(card, "CONTACT_ID").values] == ["/crm/contact/details/9/"]
    assert card.amount is None


def test_bad_locale_falls_back():
    card = build_card(rich_lead(), rich_ref(), "")
    assert card.locale == "en" and card.ui_locale == "en"
    card = build_card(rich_lead(), rich_ref(), "<script>")
    assert card.ui_locale == "en" and card.amount == "€48,250.00"


def test_every_documented_field_has_a_translated_label():
    documented = [
        c for c in load("crm_lead_fields_response.docs.json")["result"] if not c.startswith("UF_")
    ]
    assert set(documented) <= set(FIELD_LABELS)
    assert set(lead_123()) <= set(FIELD_LABELS)
    lead = {code: "x" for code in FIELD_LABELS}
    card = build_card(lead, ReferenceData(), "ru")
    for f in all_fields(card):
        assert f.label != f.code or f.code == "ID", f.code


def test_card_is_frozen():
    card = build_card(rich_lead(), rich_ref(), "en")
    with pytest.raises(AttributeError):
        card.title = "x"  # type: ignore[misc]
    row = field(card, "PHONE")
    with pytest.raises(AttributeError):
        row.label = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        row.values[0].href = "javascript:alert(1)"  # type: ignore[misc]


def test_fields_with_values_of_several_kinds_are_inline():
    card = build_card(rich_lead(), rich_ref(), "en")
    created = field(card, "CREATED_BY_ID")  # "Created": a date and who did it
    assert [v.kind for v in created.values] == ["date", "user"] and created.inline
    assert field(card, "ASSIGNED_BY_ID").inline is False  # the user alone
    assert field(card, "PHONE").inline is False
    assert all(f.inline == (len({v.kind for v in f.values}) > 1) for f in all_fields(card))
    assert cards.make_field("X", "X", (cards.Value("a"), cards.Value("b"))).inline is False
    mixed = (cards.Value("a"), cards.Value("b", kind="multiline"))
    assert cards.make_field("X", "X", mixed, hint="x").inline is True


@pytest.mark.parametrize(
    "raw, text",
    [
        ("  plain  ", "plain"),
        ("a\r\nb\rc", "a\nb\nc"),
        ("tab\tkept\n", "tab\tkept"),
        ("zero\u200bwidth\u202eflip\x00nul\x7f", "zerowidthflipnul"),
        ("\u00a0nbsp\u00a0", "nbsp"),
        (12, "12"),
        (True, "Y"),
        (None, ""),
        (["x"], ""),
    ],
)
def test_text_cleaning(raw, text):
    assert card_values.text(raw) == text


def test_text_shortcut_for_printable_strings_is_safe():
    # _text returns a printable string just stripped, skipping _CONTROL: only right
    # while everything _CONTROL removes (and "\r") is unprintable.
    for code in range(0x10000):
        ch = chr(code)
        if card_values._CONTROL.match(ch) or ch == "\r":
            assert not ch.isprintable(), hex(code)


def test_absurd_amounts_still_build_a_card():
    # A hostile or broken portal: OPPORTUNITY and a money UF beyond Babel's 28 digits.
    lead = dict(lead_123(), OPPORTUNITY="1e30", CURRENCY_ID="USD")
    card = build_card(lead, ReferenceData(users=users()), "en")
    assert card.amount is not None and "1E30" in str(card.amount)
