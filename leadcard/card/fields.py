"""The lead's fields: which exist, what they are called, how each one is shown, and which
records a card needs fetched besides the lead.

Owns the field catalogue shared by the sections and by "Show all fields": the labels of every
field ``crm.lead.get`` returns (in the order "Show all fields" lists them), each system field's
value kind, the section titles and stage-group labels, and the helpers the data layer asks
what to fetch (:func:`user_ids_of`, :func:`company_id_of`, :func:`contact_id_of`).
Field shapes: ``bitrix24/b24restdocs`` ``api-reference/crm/leads/crm-lead-get.md``.
"""

from __future__ import annotations

from collections.abc import Mapping

from leadcard.card.i18n import N_
from leadcard.card.values import positive_id

# Users a lead names; ``leadcard.flows.lead_reader`` fetches them in the same batch.
USER_FIELDS = ("ASSIGNED_BY_ID", "CREATED_BY_ID", "MODIFY_BY_ID", "MOVED_BY_ID", "LAST_ACTIVITY_BY")

# Every field crm.lead.get returns, in the order "Show all fields" lists them.
FIELD_LABELS: dict[str, str] = {
    "ID": N_("ID"),
    "TITLE": N_("Lead name"),
    "HONORIFIC": N_("Salutation"),
    "NAME": N_("First name"),
    "SECOND_NAME": N_("Middle name"),
    "LAST_NAME": N_("Last name"),
    "POST": N_("Position"),
    "BIRTHDATE": N_("Date of birth"),
    "PHONE": N_("Phone"),
    "EMAIL": N_("E-mail"),
    "WEB": N_("Website"),
    "IM": N_("Messenger"),
    "LINK": N_("Link"),
    "CONTACT_ID": N_("Contact"),
    "CONTACT_IDS": N_("Contacts"),
    "COMPANY_TITLE": N_("Company name"),
    "COMPANY_ID": N_("Company"),
    "OPPORTUNITY": N_("Amount"),
    "CURRENCY_ID": N_("Currency"),
    "IS_MANUAL_OPPORTUNITY": N_("Amount entered manually"),
    "STATUS_ID": N_("Stage"),
    "STATUS_DESCRIPTION": N_("Stage details"),
    "STATUS_SEMANTIC_ID": N_("Stage group"),
    "SOURCE_ID": N_("Source"),
    "SOURCE_DESCRIPTION": N_("Source details"),
    "IS_RETURN_CUSTOMER": N_("Repeat lead"),
    "COMMENTS": N_("Comment"),
    "ADDRESS": N_("Address"),
    "ADDRESS_2": N_("Address (line 2)"),
    "ADDRESS_CITY": N_("City"),
    "ADDRESS_POSTAL_CODE": N_("Postal code"),
    "ADDRESS_REGION": N_("Region"),
    "ADDRESS_PROVINCE": N_("State / province"),
    "ADDRESS_COUNTRY": N_("Country"),
    "ADDRESS_COUNTRY_CODE": N_("Country code"),
    "ADDRESS_LOC_ADDR_ID": N_("Location address ID"),
    "UTM_SOURCE": N_("Ad system"),
    "UTM_MEDIUM": N_("Traffic type"),
    "UTM_CAMPAIGN": N_("Ad campaign"),
    "UTM_CONTENT": N_("Campaign content"),
    "UTM_TERM": N_("Search term"),
    "ASSIGNED_BY_ID": N_("Responsible person"),
    "CREATED_BY_ID": N_("Created by"),
    "DATE_CREATE": N_("Created on"),
    "MODIFY_BY_ID": N_("Modified by"),
    "DATE_MODIFY": N_("Modified on"),
    "MOVED_BY_ID": N_("Stage changed by"),
    "MOVED_TIME": N_("Stage changed on"),
    "LAST_ACTIVITY_BY": N_("Last activity by"),
    "LAST_ACTIVITY_TIME": N_("Last activity on"),
    "DATE_CLOSED": N_("Closed on"),
    "OPENED": N_("Available to everyone"),
    "HAS_PHONE": N_("Has a phone"),
    "HAS_EMAIL": N_("Has an e-mail"),
    "HAS_IMOL": N_("Has an open channel"),
    "ORIGINATOR_ID": N_("External source"),
    "ORIGIN_ID": N_("ID in external source"),
}

# How a system field's value is shown when it lands in "Show all fields" (extra.py has one
# formatter per kind; a field not listed is plain text).
FIELD_KINDS: dict[str, str] = {
    **dict.fromkeys(
        (
            "OPENED",
            "HAS_PHONE",
            "HAS_EMAIL",
            "HAS_IMOL",
            "IS_RETURN_CUSTOMER",
            "IS_MANUAL_OPPORTUNITY",
        ),
        "flag",
    ),
    **dict.fromkeys(USER_FIELDS, "user"),
    **dict.fromkeys(
        ("DATE_CREATE", "DATE_MODIFY", "MOVED_TIME", "LAST_ACTIVITY_TIME", "DATE_CLOSED"),
        "datetime",
    ),
    "BIRTHDATE": "date",
    "STATUS_ID": "status",
    "SOURCE_ID": "source",
    "HONORIFIC": "honorific",
    "STATUS_SEMANTIC_ID": "semantic",
    "OPPORTUNITY": "amount",
    "CURRENCY_ID": "currency",
    "COMPANY_ID": "company",
    "CONTACT_ID": "contact",
    "CONTACT_IDS": "contacts",
    "COMMENTS": "comments",
    **dict.fromkeys(("PHONE", "EMAIL", "WEB", "IM", "LINK"), "multifield"),
}

SECTION_TITLES = {
    "contact": N_("Contact person"),
    "company": N_("Company"),
    "deal": N_("Deal value"),
    "stage": N_("Stage and source"),
    "comments": N_("Comment"),
    "address": N_("Address"),
    "marketing": N_("Marketing (UTM)"),
    "people": N_("Responsible and history"),
    "custom": N_("Custom fields"),
}

SEMANTIC_LABELS = {"P": N_("In progress"), "S": N_("Successful"), "F": N_("Unsuccessful")}


def user_ids_of(lead: Mapping) -> set[str]:
    """User ids the card shows (responsible, author, editors), for ``user.get``."""
    ids = (positive_id(lead.get(key)) for key in USER_FIELDS)
    return {uid for uid in ids if uid}


def company_id_of(lead: Mapping) -> str | None:
    """The linked company's id for ``crm.company.get``, None when not linked."""
    return positive_id(lead.get("COMPANY_ID"))


def contact_id_of(lead: Mapping) -> str | None:
    """The linked contact's id for ``crm.contact.get``, None when not linked."""
    return positive_id(lead.get("CONTACT_ID"))
