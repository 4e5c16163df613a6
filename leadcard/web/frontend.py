"""Flask wiring for the pages: flask-babel, Jinja helpers, the frame library.

``init_app(app)``:

* registers flask-babel with the catalogs in ``<repo>/translations``; the
  locale comes from ``flask.g.lang`` (a Bitrix24 ``LANG`` id set by the view)
  or else the request's ``LANG`` value, mapped by :mod:`leadcard.card.i18n` to the
  *format* locale (``br`` → ``pt_BR``), which flask-babel's format filters use;
* gives flask-babel the catalog of the table's language for that locale
  (:class:`CatalogDomain`: ``zh_Hant_TW`` reads ``translations/zh_Hant``);
* adds the Jinja globals ``static_url(filename)`` (a ``static`` URL with a
  content hash for cache busting), ``ui_lang()`` (``<html lang>``) and
  ``ui_dir()`` (``<html dir>``), and the
  filters ``safe_href`` (http/https or None), ``avatar_src`` (a user photo the
  CSP will load, or None) and ``lc_datetime``;
* exposes ``b24jssdk`` (``.src``, ``.integrity``) to every template.

The app itself provides the ``csp_nonce()`` Jinja global; templates call it
for every ``<script>``/``<style>`` they emit.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from babel.support import NullTranslations
from flask import Flask, current_app, g, has_request_context, request, url_for
from flask_babel import Babel, Domain, get_locale

from leadcard.card import i18n
from leadcard.card.values import safe_web_url
from leadcard.web import assets, static_files


class ScriptAsset(NamedTuple):
    src: str
    integrity: str


def select_locale() -> str:
    """flask-babel locale selector: ``g.lang`` or ``LANG`` → format locale."""
    lang = g.get("lang") if has_request_context() else None
    if not lang and has_request_context():
        lang = request.values.get("LANG")
    return i18n.format_locale_for_lang(lang)


def current_locale() -> str:
    """The request's Babel locale id (format locale), ``en`` outside requests."""
    try:
        locale = get_locale()
    except RuntimeError:
        locale = None
    return str(locale) if locale else i18n.DEFAULT_LOCALE


def ui_lang() -> str:
    """Language of the texts on the page, for ``<html lang>``."""
    return i18n.html_lang(current_locale())


def bitrix_lang() -> str:
    """The Bitrix24 ``LANG`` of the page's locale (``es`` → ``la``): what its scripts send."""
    return i18n.bitrix_lang_for_locale(current_locale())


def ui_dir() -> str:
    """Direction of the texts on the page (``ltr``/``rtl``), for ``<html dir>``."""
    return i18n.html_dir(current_locale())


class CatalogDomain(Domain):
    """flask-babel's domain, reading the catalog :mod:`leadcard.card.i18n` picks.

    flask-babel would look the format locale up through gettext, which tries
    ``zh_Hant_TW`` and ``zh`` but never the ``zh_Hant`` directory; the cards
    (card/context.py) and the pages must read the same catalog.
    """

    def get_translations(self) -> NullTranslations:
        """The request's catalog (English msgids outside a request)."""
        if not has_request_context():
            return NullTranslations()
        return i18n.translations(current_locale())


class LeadCardBabel(Babel):
    """flask-babel with :class:`CatalogDomain` as its domain."""

    @property
    def domain_instance(self) -> Domain:
        return _DOMAIN


_DOMAIN = CatalogDomain(domain=i18n.DOMAIN)


def static_url(filename: str) -> str:
    """``url_for('static', ...)`` plus ``?v=<content hash>``: the version under which
    ``static_files.StaticFiles`` lets browsers keep the file for a year (edits bust caches)."""
    folder = current_app.static_folder or str(assets.STATIC_DIR)
    # os.path, not pathlib: every page calls this three times and building
    # a Path costs more than the stat itself.
    path = os.path.join(folder, filename)
    try:
        version = static_files.version_of(path)
    except OSError:
        return url_for("static", filename=filename)
    return url_for("static", filename=filename, v=version)


def safe_href(value: object) -> str | None:
    """An http(s) URL for ``href``, or None for anything else."""
    return safe_web_url(value) if isinstance(value, str) else None


def avatar_src(value: object) -> str | None:
    """A user photo URL the page's CSP will load, else None (initials show instead).

    The app's ``img-src`` allows ``'self'``, ``data:`` and the portal origin
    (``g.frame_origin``, set by ``security.set_frame_origin``); Bitrix24 cloud
    serves photos from a CDN host, so those need ``AVATAR_ANY_HTTPS = True`` in
    the config together with ``https:`` in ``img-src``.
    """
    url = safe_href(value)
    if not url:
        return None
    if url.startswith("https://") and current_app.config.get("AVATAR_ANY_HTTPS"):
        return url
    origin = g.get("frame_origin") if has_request_context() else None
    if origin and (url == origin or url.startswith(origin.rstrip("/") + "/")):
        return url
    return None


def lc_datetime(value: object) -> str:
    """A datetime in the request locale; naive values are UTC and say so."""
    if not isinstance(value, datetime):
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = i18n.format_datetime(value, current_locale()) or ""
    return f"{text} UTC" if value.utcoffset() == timedelta(0) else text


def _asset_context() -> dict[str, object]:
    return {
        "b24jssdk": ScriptAsset(
            src=static_url(assets.B24JSSDK_FILE),
            integrity=assets.B24JSSDK_INTEGRITY,
        )
    }


def init_app(app: Flask) -> None:
    """Register flask-babel, the Jinja helpers and the asset context on ``app``."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(i18n.TRANSLATIONS_DIR))
    app.config.setdefault("BABEL_DEFAULT_LOCALE", i18n.DEFAULT_LOCALE)
    LeadCardBabel(app, locale_selector=select_locale)
    app.jinja_env.globals.update(static_url=static_url, ui_lang=ui_lang, ui_dir=ui_dir,
                                 bitrix_lang=bitrix_lang)
    app.jinja_env.filters.update(
        safe_href=safe_href, avatar_src=avatar_src, lc_datetime=lc_datetime
    )
    app.context_processor(_asset_context)
