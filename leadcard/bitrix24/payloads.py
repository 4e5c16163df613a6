"""Parse everything Bitrix24 POSTs to us into frozen dataclasses, or raise BadPayload.

`request.form`/`request.args` never travel past this module. Bitrix24 pushes
`application/x-www-form-urlencoded` bodies with PHP-style nested keys (`auth[member_id]`),
every value a string, and `PLACEMENT_OPTIONS` as JSON *text* (api-reference/widgets/_includes/widget_data.md; api-reference/events/index.md).
Nothing here is trusted for routing: member_id selects a stored portal, the rest is
compared, never dialled (threats.md R1).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from leadcard.core.errors import BadPayload

LEAD_TAB = "CRM_LEAD_DETAIL_TAB"

_MEMBER_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_TOKEN = re.compile(r"^[A-Za-z0-9._~-]{8,512}$")
_LANG = re.compile(r"^[a-z]{2}$")
_APP_SID = re.compile(r"^[A-Za-z0-9]{1,64}$")
_DOMAIN = re.compile(r"^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$")
_BRACKETED = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])+)$")

# Public for the other inputs that carry the same values (the card's action requests).
MEMBER_ID_PATTERN = _MEMBER_ID
TOKEN_PATTERN = _TOKEN
LANG_PATTERN = _LANG

MAX_OPTIONS_BYTES = 4096
MAX_LEAD_ID = 10**12


@dataclass(frozen=True)
class FrameContext:
    """What every frame POST (install, placement, app page) carries."""

    domain: str
    protocol: str
    lang: str
    app_sid: str
    member_id: str
    auth_id: str = field(repr=False)
    auth_expires: int
    refresh_id: str = field(repr=False)
    application_token: str = field(repr=False)
    license_status: str
    placement: str


@dataclass(frozen=True)
class PlacementRequest:
    frame: FrameContext
    lead_id: int


@dataclass(frozen=True)
class Event:
    """An event delivered by Bitrix24's queue (ONAPPINSTALL, ONAPPUNINSTALL, …)."""

    name: str
    member_id: str
    application_token: str = field(repr=False)
    data: dict[str, Any]
    auth: dict[str, Any] = field(repr=False)

    @property
    def clean(self) -> bool:
        return str(self.data.get("CLEAN", "0")) == "1"


def lang_of(values: Mapping[str, str]) -> str:
    """The LANG code if well-formed, else English (h.7: fall back for unknown ids)."""
    lang = (values.get("LANG") or "").strip().lower()
    return lang if _LANG.match(lang) else "en"


def parse_frame(args: Mapping[str, str], form: Mapping[str, str], *, need_auth: bool = True) -> FrameContext:
    """Validate the query + form of a frame POST."""
    member_id = (form.get("member_id") or "").strip()
    if not _MEMBER_ID.match(member_id):
        raise BadPayload("member_id missing or malformed")
    auth_id = (form.get("AUTH_ID") or "").strip()
    if need_auth and not _TOKEN.match(auth_id):
        raise BadPayload("AUTH_ID missing or malformed")
    refresh_id = (form.get("REFRESH_ID") or "").strip()
    if refresh_id and not _TOKEN.match(refresh_id):
        raise BadPayload("REFRESH_ID malformed")
    application_token = (form.get("APPLICATION_TOKEN") or "").strip()
    if application_token and not _TOKEN.match(application_token):
        raise BadPayload("APPLICATION_TOKEN malformed")
    domain = (args.get("DOMAIN") or "").strip()
    if domain and not _DOMAIN.match(domain):
        raise BadPayload("DOMAIN malformed")
    app_sid = (args.get("APP_SID") or "").strip()
    if app_sid and not _APP_SID.match(app_sid):
        raise BadPayload("APP_SID malformed")
    try:
        # AUTH_EXPIRES is a lifetime in seconds, not a timestamp (api-reference/widgets/_includes/widget_data.md pitfall).
        auth_expires = int(form.get("AUTH_EXPIRES") or 3600)
    except ValueError:
        raise BadPayload("AUTH_EXPIRES is not a number") from None
    return FrameContext(
        domain=domain,
        protocol="1" if args.get("PROTOCOL", "1") == "1" else "0",
        lang=lang_of(args),
        app_sid=app_sid,
        member_id=member_id,
        auth_id=auth_id,
        auth_expires=max(0, min(auth_expires, 86400)),
        refresh_id=refresh_id,
        application_token=application_token,
        license_status=(form.get("status") or "")[:1],
        placement=(form.get("PLACEMENT") or "DEFAULT").strip()[:64],
    )


def parse_placement(args: Mapping[str, str], form: Mapping[str, str]) -> PlacementRequest:
    """The lead tab POST: a CRM_LEAD_DETAIL_TAB frame with `{"ID": "<positive int>"}`."""
    frame = parse_frame(args, form)
    if frame.placement != LEAD_TAB:
        raise BadPayload("PLACEMENT is not CRM_LEAD_DETAIL_TAB")
    return PlacementRequest(frame=frame, lead_id=lead_id_of(form.get("PLACEMENT_OPTIONS")))


def lead_id_of(raw: str | None) -> int:
    """`PLACEMENT_OPTIONS` is JSON text: `{"ID":"6591"}` (api-reference/widgets/crm/detail-tab.md)."""
    if not raw:
        raise BadPayload("PLACEMENT_OPTIONS missing")
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_OPTIONS_BYTES:
        raise BadPayload("PLACEMENT_OPTIONS too large")
    try:
        options = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadPayload("PLACEMENT_OPTIONS is not JSON") from None
    if not isinstance(options, dict):
        raise BadPayload("PLACEMENT_OPTIONS is not an object")
    value = options.get("ID")
    if isinstance(value, bool):
        raise BadPayload("ID is not a positive integer")
    if isinstance(value, int):
        lead_id = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 13:
        lead_id = int(value)
    else:
        raise BadPayload("ID is not a positive integer")
    if not 0 < lead_id < MAX_LEAD_ID:
        raise BadPayload("ID is not a positive integer")
    return lead_id


def unflatten(form: Mapping[str, str]) -> dict[str, Any]:
    """PHP-style keys → nested dicts: `auth[member_id]=x` → `{"auth": {"member_id": "x"}}`."""
    out: dict[str, Any] = {}
    for key, value in form.items():
        match = _BRACKETED.match(key)
        if not match:
            out[key] = value
            continue
        path = [match.group(1)] + re.findall(r"\[([^\[\]]*)\]", match.group(2))
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[path[-1]] = value
    return out


def parse_event(form: Mapping[str, str]) -> Event:
    """An event POST (api-reference/events/index.md): event, data[…], ts, auth[…]."""
    body = unflatten(form)
    name = str(body.get("event") or "").strip().upper()
    if not name or len(name) > 64 or not name.replace("_", "").isalnum():
        raise BadPayload("event name missing or malformed")
    auth = body.get("auth")
    if not isinstance(auth, dict):
        raise BadPayload("auth missing")
    member_id = str(auth.get("member_id") or "").strip()
    if not _MEMBER_ID.match(member_id):
        raise BadPayload("auth[member_id] missing or malformed")
    data = body.get("data")
    return Event(
        name=name,
        member_id=member_id,
        application_token=str(auth.get("application_token") or "").strip(),
        data=data if isinstance(data, dict) else {},
        auth=auth,
    )
