"""What one lead-tab view fetches from Bitrix24, in as few upstream requests as possible.

The lead is always read with the *viewing user's* token, so Bitrix24's own access rights
decide what they see (threats.md R3). Reference data — field labels, stages, sources,
honorifics, currencies, users — is the same for everyone on a portal and is cached per portal
(and language, since Bitrix24 localizes captions) with a TTL.

- warm view: one `batch` with the lead and its context panels (flows/lead_context.py), plus
  the company and contact when it links them;
- cold view: one `batch` with the lead, every missing dictionary, and `$result[lead][…]`
  back-references for users, company and contact (settings/how-to-call-rest-api/batch.md).

Company and contact titles are *not* cached: whether a user may see them is a per-user right.

Every request goes through the view's `PortalSession` (bitrix24/session.py): the portal, the
viewer's credential, the deadline, and the renew-once / move-once policy are the session's;
this module only decides *what* to ask.
"""

from __future__ import annotations

import logging
from typing import Any

from leadcard.bitrix24.session import PortalSession
from leadcard.card.fields import USER_FIELDS, company_id_of, contact_id_of, user_ids_of
from leadcard.card.model import ReferenceData
from leadcard.core import errors
from leadcard.flows import lead_context
from leadcard.storage.cache import Cache

log = logging.getLogger(__name__)

# Portal-wide dictionaries: cache key suffix → (method, params).
DICTIONARIES: dict[str, tuple[str, dict[str, Any]]] = {
    "fields": ("crm.lead.fields", {}),
    "status.STATUS": ("crm.status.list", {"order": {"SORT": "ASC"}, "filter": {"ENTITY_ID": "STATUS"}}),
    "status.SOURCE": ("crm.status.list", {"order": {"SORT": "ASC"}, "filter": {"ENTITY_ID": "SOURCE"}}),
    "status.HONORIFIC": ("crm.status.list", {"order": {"SORT": "ASC"}, "filter": {"ENTITY_ID": "HONORIFIC"}}),
    "currencies": ("crm.currency.list", {}),
}


class LeadReader:
    """Reads one lead plus the reference data its card needs."""

    def __init__(self, cache: Cache, ttl: float) -> None:
        self._cache = cache
        self._ttl = ttl

    def read(
        self, session: PortalSession, *, lead_id: int, lang: str
    ) -> tuple[dict[str, Any], ReferenceData]:
        """The lead `lead_id` as the session's user sees it, and its card's reference data."""
        member_id = session.member_id
        dict_keys = {name: self._dictionary_key(member_id, lang, name) for name in DICTIONARIES}
        refs_key = f"{member_id}:leadrefs:{lead_id}"
        cached = self._cache.get_many([*dict_keys.values(), refs_key])
        dictionaries = {name: cached.get(key) for name, key in dict_keys.items()}
        known = cached.get(refs_key) or None
        known_users = set(known["users"]) if known else set()
        user_keys = {u: self._user_key(member_id, u) for u in known_users}
        user_cache = self._cache.get_many(list(user_keys.values()))
        users = {u: user_cache[key] for u, key in user_keys.items() if key in user_cache}

        missing = [name for name, value in dictionaries.items() if value is None]
        need_users = known is None or len(users) < len(known_users)
        need_links = known is None or bool(known.get("company") or known.get("contact"))

        # Every view is one batch: the lead and its context panels are fresh each time
        # (flows/lead_context.py); dictionaries and user names only when not cached.
        lead, fetched, users_found, companies, contacts, context = self._batch(
            session, lead_id, missing, need_users, need_links
        )
        for name, value in fetched.items():
            dictionaries[name] = value
            self._cache.set(dict_keys[name], value, self._ttl)
        users.update(users_found)

        # A lead whose related users changed since the last view: one small follow-up — but
        # never for someone this batch already asked about (a user.get that does not return
        # a system or fired user would not return them a second time either).
        wanted = user_ids_of(lead) | lead_context.user_ids(context)
        asked = lead_context.asked_user_ids(context) | (user_ids_of(lead) if need_users else set())
        absent = wanted - set(users) - asked
        if absent:
            absent_keys = {u: self._user_key(member_id, u) for u in absent}
            cached_now = self._cache.get_many(list(absent_keys.values()))
            for u, key in absent_keys.items():
                if key in cached_now:  # get_many leaves misses out
                    users[u] = cached_now[key]
                    absent.discard(u)
        fresh_users = dict(users_found)
        if absent:
            fetched_users = self._users(session, sorted(absent))
            users.update(fetched_users)
            fresh_users.update(fetched_users)

        # Write back only what changed: a warm view of an unchanged lead writes nothing, so
        # entries live one TTL from when they were fetched and are then read afresh.
        if fresh_users:
            self._cache.set_many(
                {self._user_key(member_id, u): v for u, v in fresh_users.items()}, self._ttl
            )
        refs = {"users": sorted(wanted), "company": company_id_of(lead),
                "contact": contact_id_of(lead)}
        if refs != known:
            self._cache.set(refs_key, refs, self._ttl)
        return lead, ReferenceData(
            fields=dictionaries.get("fields") or {},
            statuses={
                name.split(".", 1)[1]: dictionaries.get(name) or []
                for name in DICTIONARIES if name.startswith("status.")
            },
            currencies=dictionaries.get("currencies") or [],
            users={u: v for u, v in users.items() if u in wanted},
            companies=companies,
            contacts=contacts,
            context=context,
        )

    def dictionary(self, session: PortalSession, name: str, lang: str) -> Any:
        """One portal dictionary of :data:`DICTIONARIES` as the card's views cache it; read
        (one call) and cached when it is not there."""
        key = self._dictionary_key(session.member_id, lang, name)
        value = self._cache.get(key)
        if value is None:
            method, params = DICTIONARIES[name]
            value = session.call(method, params)
            if value is not None:
                self._cache.set(key, value, self._ttl)
        return value

    @staticmethod
    def _dictionary_key(member_id: str, lang: str, name: str) -> str:
        return f"{member_id}:{lang}:{name}"

    # --- upstream requests ----------------------------------------------------------

    @staticmethod
    def _batch(session: PortalSession, lead_id: int, missing: list[str], need_users: bool,
               need_links: bool):
        commands: dict[str, Any] = {"lead": ("crm.lead.get", {"id": lead_id})}
        commands.update(lead_context.encoded_context_commands(lead_id))
        for name in missing:
            commands[f"d_{name}"] = DICTIONARIES[name]
        if need_users:
            commands["users"] = (
                "user.get",
                {"FILTER": {"ID": [f"$result[lead][{f}]" for f in USER_FIELDS]}},
            )
        if need_links:
            commands["company"] = ("crm.company.get", {"id": "$result[lead][COMPANY_ID]"})
            commands["contact"] = ("crm.contact.get", {"id": "$result[lead][CONTACT_ID]"})
        result = session.batch(commands)
        lead = _lead_or_error(result.get("lead"))  # raises the lead's own error

        fetched: dict[str, Any] = {}
        for name in missing:
            key = f"d_{name}"
            if key in result.errors:
                # A dictionary the user may not read: render without it, don't cache.
                log.info("dictionary %s unavailable: %s", name, result.errors[key].code)
                continue
            value = result.results.get(key)
            if value is not None:
                fetched[name] = value
        users: dict[str, Any] = {}
        for item in [*_as_list(result.results.get("users")),
                     *lead_context.panel_users(result.results)]:
            if isinstance(item, dict) and item.get("ID") is not None:
                users[str(item["ID"])] = _user_brief(item)
        companies: dict[str, Any] = {}
        contacts: dict[str, Any] = {}
        company_id, contact_id = company_id_of(lead), contact_id_of(lead)
        company = result.results.get("company")
        if company_id and isinstance(company, dict) and "company" not in result.errors:
            companies[company_id] = company
        contact = result.results.get("contact")
        if contact_id and isinstance(contact, dict) and "contact" not in result.errors:
            contacts[contact_id] = contact
        context = lead_context.collect(result.results, result.errors, lead)
        return lead, fetched, users, companies, contacts, context

    @staticmethod
    def _users(session: PortalSession, ids: list[str]) -> dict[str, Any]:
        try:
            found = session.call("user.get", {"FILTER": {"ID": ids}})
        except (errors.AccessDenied, errors.InsufficientScope, errors.PortalError):
            return {}  # names are a nicety; the card falls back to "User #id"
        return {str(u["ID"]): _user_brief(u) for u in _as_list(found)
                if isinstance(u, dict) and u.get("ID") is not None}

    @staticmethod
    def _user_key(member_id: str, user_id: str) -> str:
        return f"{member_id}:user:{user_id}"


def _lead_or_error(lead: Any) -> dict[str, Any]:
    if not isinstance(lead, dict) or not lead.get("ID"):
        raise errors.LeadNotFound("crm.lead.get answered no lead")
    return lead


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return []


def _user_brief(user: dict[str, Any]) -> dict[str, Any]:
    """Only what the card shows; keeps personal data in the cache to the minimum."""
    keep = ("ID", "NAME", "LAST_NAME", "SECOND_NAME", "PERSONAL_PHOTO", "WORK_POSITION", "ACTIVE")
    return {k: user.get(k) for k in keep if k in user}
