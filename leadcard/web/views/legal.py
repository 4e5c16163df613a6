"""GET /privacy and GET /license — the privacy policy and the end-user licence.

Bitrix24 Market wants links to the app's own licence agreement and privacy policy, viewable
in a browser, the licence naming the solution and the licensor
(market/preparing-to-publish/common-requirements.md §1.B.12; checklist.md). Both pages are
public and carry no portal data, so they may be cached briefly by browsers and proxies; the
texts come from the settings (`VENDOR_NAME`, `VENDOR_CONTACT`, `REST_LOG_DAYS`,
`REFERENCE_TTL_SECONDS`) so what the policy says is what this deployment does.

Language: `?lang=` (a Bitrix24 `LANG` id such as `la`, or a locale such as `de`), else the
browser's `Accept-Language`, through the same mapping as every page (card/i18n.py).
Framing: the links from the app's pages carry `member_id`; when it names a stored portal the
page may be framed by that portal, as the home page is (`frame-ancestors`), otherwise
by nobody.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

from flask import Blueprint, g, render_template, request

from leadcard.card import i18n
from leadcard.core import errors
from leadcard.core.grant import portal_origin
from leadcard.flows import crm_mode, services
from leadcard.storage.portals import UNINSTALLED
from leadcard.web import assets, security

bp = Blueprint("legal", __name__)

# Public, the same for everyone who asks in one language: 5 minutes in any cache.
CACHE_CONTROL = "public, max-age=300"
# Texts of the app's own stores whose lifetimes are constants of the code (the policy
# names them; tests/unit/test_legal.py keeps them in step with the modules).
ACTION_KEY_HOURS = 24  # issue 13: idempotency keys of card actions
EVENT_RECORD_DAYS = 30  # storage/event_log.RETENTION
SIGN_IN_RECORD_MINUTES = 60  # storage/viewer_renewals.VIEWER_RENEWAL_TTL


class Notice(NamedTuple):
    """One third-party component shipped to the browser (THIRD_PARTY_NOTICES.md)."""

    name: str
    origin: str
    licence: str
    text_file: str  # under static/vendor/licenses/


NOTICES = (
    Notice("@bitrix24/b24jssdk 2.2.0", "static/vendor/b24jssdk-2.2.0.min.js", "MIT",
           "b24jssdk-2.2.0.LICENSE"),
    Notice("axios 1.x", "bundled in @bitrix24/b24jssdk", "MIT", "axios.LICENSE"),
    Notice("luxon 3.x", "bundled in @bitrix24/b24jssdk", "MIT", "luxon.LICENSE"),
    Notice("qs-esm 8.x", "bundled in @bitrix24/b24jssdk", "BSD-3-Clause", "qs-esm.LICENSE"),
    Notice("@bitrix24/b24ui-nuxt 2.13.0 (design token values)", "static/css/b24-tokens.css",
           "MIT", "b24ui-nuxt-2.13.0.LICENSE"),
)


@lru_cache(maxsize=16)
def licence_text(name: str) -> str:
    """The vendored licence text (read once per process; a missing file says so)."""
    path = assets.STATIC_DIR / "vendor" / "licenses" / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def _page_lang() -> str:
    """`?lang=` if given, else the first `Accept-Language` entry we have texts for."""
    asked = request.args.get("lang", "").strip()
    if asked:
        return asked[:16]
    for value, _quality in request.accept_languages:
        if value == "*":
            continue
        if value.lower().startswith("en") or i18n.ui_locale_for_locale(value) != i18n.DEFAULT_LOCALE:
            return value
    return i18n.DEFAULT_LOCALE


def _frame_for_portal() -> None:
    """Let the portal named by `member_id` frame the page, if it is a stored one."""
    member_id = request.args.get("member_id", "").strip()
    if not member_id or len(member_id) > 64:
        return
    try:
        portal = services.current().store.get(member_id)
    except errors.LeadCardError:
        return  # the database is down: the page still shows, just not framed
    if portal is not None and portal.status != UNINSTALLED:
        security.set_frame_origin(portal_origin(portal.client_endpoint))


def _prepare() -> None:
    g.lang = _page_lang()
    g.cache_control = CACHE_CONTROL
    g.vary = "Accept-Language"
    _frame_for_portal()


def _vendor() -> dict[str, str]:
    settings = services.current().settings
    return {"vendor_name": settings.vendor_name, "vendor_contact": settings.vendor_contact}


def _number(value: float) -> str:
    return i18n.format_number(value, i18n.DEFAULT_LOCALE if not g.get("lang") else
                              i18n.format_locale_for_lang(g.lang)) or str(value)


@bp.get("/privacy")
def privacy() -> tuple[str, int]:
    _prepare()
    settings = services.current().settings
    cache_minutes = math.ceil(max(settings.reference_ttl, crm_mode.CACHE_SECONDS) / 60)
    return render_template(
        "privacy.html",
        rest_log_days=_number(settings.rest_log_days),
        cache_minutes=cache_minutes,
        action_key_hours=ACTION_KEY_HOURS,
        event_record_days=EVENT_RECORD_DAYS,
        sign_in_minutes=SIGN_IN_RECORD_MINUTES,
        member_id=request.args.get("member_id", "")[:64],
        **_vendor(),
    ), 200


@bp.get("/license")
def license_page() -> tuple[str, int]:
    _prepare()
    notices = [(n, licence_text(n.text_file)) for n in NOTICES]
    return render_template(
        "license.html", notices=notices, member_id=request.args.get("member_id", "")[:64],
        **_vendor(),
    ), 200
