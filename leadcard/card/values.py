"""One raw value → safe display text: the card's small parsers and sanitisers.

Owns everything that looks at a single value without needing the portal's dictionaries:
cleaning untrusted text, ids, flags, colours and their contrast, links (only ``http(s)``,
``tel:`` and ``mailto:`` ever become an ``href``), ``COMMENTS`` BB-code/HTML → text,
enumeration items, and a person's name and initials. Pure: no Flask, no I/O.

Everything in a lead is untrusted text typed by strangers (web forms, open channels,
imports): values stay plain strings for Jinja to autoescape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from html.parser import HTMLParser
from urllib.parse import urlsplit

_POSITIVE_INT = re.compile(r"^\s*0*([1-9]\d{0,17})\s*$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%*+/=^_`{|}~'-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_BARE_HOST = re.compile(r"^(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,63}(?::\d{1,5})?(?:[/?#]\S*)?$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
# What makes a would-be URL plain text: whitespace (``\s`` is exactly
# ``str.isspace``), C0 controls, a backslash, and the invisible/bidi marks of
# _CONTROL. One regex instead of a per-character loop in Python.
_URL_JUNK = re.compile(r"[\s\x00-\x1f\x7f\\\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def text(value: object) -> str:
    """A scalar as clean one-line-or-more text; '' for None and containers."""
    if type(value) is str:  # nearly every call: skip the other checks
        if value.isprintable():
            # No line breaks and nothing _CONTROL matches (all of it is unprintable).
            return value.strip()
        raw = value
    elif value is None or isinstance(value, (dict, list, tuple, set)):
        return ""
    elif isinstance(value, bool):
        return "Y" if value else "N"
    else:
        raw = str(value)
    if "\r" in raw:
        raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", raw).strip()


def positive_id(value: object) -> str | None:
    """``"19"`` → ``"19"``; ``""``, ``"0"``, ``None``, ``"-3"``, ``"x"`` → None."""
    if isinstance(value, bool):
        return None
    match = _POSITIVE_INT.match(text(value))
    return match.group(1) if match else None


def flag(value: object) -> bool | None:
    """Bitrix24's ``"Y"``/``"N"`` (and ``1``/``true``/``yes``…) → bool; None if neither."""
    if isinstance(value, bool):
        return value
    upper = text(value).upper()
    if upper in ("Y", "1", "TRUE", "YES"):
        return True
    if upper in ("N", "0", "FALSE", "NO"):
        return False
    return None


# --- colours -----------------------------------------------------------------


def valid_color(value: object) -> str | None:
    """``"#39A8EF"`` → ``"#39a8ef"``; anything that is not ``#rrggbb`` → None."""
    color = text(value)
    return color.lower() if _COLOR.match(color) else None


def _luminance(color: str) -> float:
    def channel(hex2: str) -> float:
        c = int(hex2, 16) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(color[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_color_on(color: str) -> str:
    """Black or white, whichever contrasts more with ``color`` (always ≥ 4.5:1)."""
    black, white = "#000000", "#ffffff"
    return black if contrast_ratio(color, black) >= contrast_ratio(color, white) else white


# --- links -------------------------------------------------------------------


def safe_web_url(value: object) -> str | None:
    """An ``http``/``https`` URL fit for ``href``, or None.

    A bare host (``www.example.com/x``) is taken as ``https://``; any other
    scheme (``javascript:``, ``data:``, ``vbscript:``), protocol-relative
    ``//host``, credentials in the URL and whitespace or control characters
    anywhere make it plain text.
    """
    url = text(value) if not isinstance(value, str) else value.strip()
    if not url or len(url) > 2048:
        return None
    return _checked_web_url(url)


@lru_cache(maxsize=1024)
def _checked_web_url(url: str) -> str | None:
    # Cached (bounded, short keys only), like urllib's own urlsplit: a card checks
    # the same few links and avatars on every view, and urlsplit plus its
    # properties is the slow part.
    if _URL_JUNK.search(url):
        return None
    if "://" not in url:
        if not _BARE_HOST.match(url):
            return None
        url = "https://" + url
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a junk port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if "@" in parts.netloc:  # same as a username or password being present
        return None
    return parts.scheme.lower() + url[len(parts.scheme) :]


def tel_href(value: str) -> str | None:
    """``tel:`` link for a phone number with at least three digits, else None."""
    digits = re.sub(r"[^0-9+*#]", "", value)
    digits = digits[:1] + digits[1:].replace("+", "")
    return "tel:" + digits if sum(ch.isdigit() for ch in digits) >= 3 else None


def mailto_href(value: str) -> str | None:
    """``mailto:`` link for a plausible address, else None."""
    return "mailto:" + value if len(value) <= 254 and _EMAIL.match(value) else None


# --- COMMENTS: BB-code / HTML → plain text -----------------------------------

_BB_BLOCK = frozenset("p quote code list * tr table br left right center justify".split())
_BB_TAGS = (
    "b|i|u|s|url|img|color|size|font|quote|code|list|\\*|p|br|left|right|center|"
    "justify|table|tr|td|th|user|video|spoiler|icon|disk file id|file|project|department"
)
_BB_TAG = re.compile(r"\[(/?)(" + _BB_TAGS + r")(?:[= ][^\]\n]{0,500})?\]", re.IGNORECASE)
_LOOKS_HTML = re.compile(r"</?[A-Za-z][^>]*>|&(?:[A-Za-z]{2,8}|#\d{1,7}|#x[0-9A-Fa-f]{1,6});")


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset("p div li tr h1 h2 h3 h4 h5 h6 blockquote pre ul ol table".split())
    _SKIP = frozenset("script style template noscript iframe object svg math".split())

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def rich_text_to_plain(value: object) -> str:
    """``COMMENTS`` (BB-code and/or HTML) → plain text with line breaks kept."""
    plain = text(value)
    if not plain:
        return ""

    def bb(match: re.Match) -> str:
        name = match.group(2).lower()
        if name in _BB_BLOCK:
            return "\n"
        return " " if name in ("td", "th") else ""

    plain = _BB_TAG.sub(bb, plain)
    if _LOOKS_HTML.search(plain):
        parser = _TextExtractor()
        parser.feed(plain)
        parser.close()
        plain = "".join(parser.parts)
    plain = _CONTROL.sub("", plain.replace("\u00a0", " "))
    lines = [line.rstrip() for line in plain.split("\n")]
    plain = "\n".join(lines)
    plain = re.sub(r"\n{3,}", "\n\n", plain)
    return plain.strip()


# --- records -----------------------------------------------------------------


def person_name(record: Mapping) -> str:
    """``NAME SECOND_NAME LAST_NAME`` of a user or contact, the empty parts left out."""
    if not isinstance(record, Mapping):
        return ""
    parts = [text(record.get(k)) for k in ("NAME", "SECOND_NAME", "LAST_NAME")]
    return " ".join([p for p in parts if p])


def initials(record: Mapping) -> str:
    """Up to two capitals from ``NAME`` and ``LAST_NAME`` (the avatar fallback)."""
    parts = [text(record.get(k)) for k in ("NAME", "LAST_NAME")]
    return "".join([p[0] for p in parts if p]).upper()[:2]


def enum_text(items: object, value: str) -> str:
    """The ``VALUE`` of the enumeration item whose ``ID`` is ``value`` (else ``value``)."""
    if isinstance(items, Mapping):
        items = [{"ID": k, "VALUE": v} for k, v in items.items()]
    if isinstance(items, list):
        for item in items:
            if isinstance(item, Mapping) and text(item.get("ID")) == value:
                return text(item.get("VALUE")) or value
    return value


def is_file(item: object) -> bool:
    """A file UF value: ``{"id": 37375, "showUrl": "…", "downloadUrl": "…"}``."""
    return (
        isinstance(item, Mapping) and "id" in item and ("showUrl" in item or "downloadUrl" in item)
    )
