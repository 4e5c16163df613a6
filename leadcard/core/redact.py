"""Secrets never reach logs: a text redactor and the logging filter that applies it everywhere.

Public API
----------
``redact(text) -> str``          replace secret values in free text with ``[REDACTED]``
``RedactingFilter``              ``logging.Filter`` that redacts message, args, traceback and
                                 string ``extra`` attributes of every record it sees
``install(logger_names=None)``   attach one ``RedactingFilter`` to every existing handler
``secret_sentinel_check(text, secrets) -> list[str]``
                                 which test sentinels leaked into captured output

What ``redact`` removes
-----------------------
* Values of these keys, case-insensitively: ``AUTH_ID``, ``REFRESH_ID``, ``auth``,
  ``access_token``, ``refresh_token``, ``application_token``, ``client_secret``, ``TOKEN_KEYS``,
  ``SECRET_KEY``, ``password``, ``APP_SID`` (a Bitrix24 session id, threats.md §2.2), in the
  shapes ``key=v`` (query strings, form bodies, ``repr`` of kwargs), PHP-style ``auth[key]=v``
  raw or URL-encoded (``auth%5Bkey%5D=v``, ``%3D``), ``"key": "v"`` / ``'key': 'v'`` (JSON, dict
  ``repr``, JSON embedded in JSON), ``('key', 'v')`` (``repr`` of a ``MultiDict``) and
  ``key: v`` (YAML/log style; not for ``auth``, which is too common a word).
* ``code`` and ``state`` only as a query or form key (``?code=`` / ``&state=`` / line start):
  elsewhere ``"code"`` is usually an error code we want to see. The reconnect ``state`` is
  single-use, but an access log line outlives it and should not carry it either.
* ``Bearer <token>``.
* Any run of 40 or more ``[A-Za-z0-9]``: Bitrix24 access/refresh tokens are 64-70 hex
  characters, while ``member_id`` (32 hex) stays readable. HMAC-SHA256 fingerprints (64 hex)
  are redacted too; log a short prefix of one instead.

Known limits: an unquoted value ends at whitespace, so ``password=two words`` keeps ``words``;
``extra`` values that are dicts or lists are left alone (redact before logging them).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote

REDACTED = "[REDACTED]"

# Longest first so "auth_id" is tried before "auth"; matching is case-insensitive.
_SECRET_KEYS = (
    "application_token",
    "refresh_token",
    "access_token",
    "client_secret",
    "token_keys",
    "secret_key",
    "refresh_id",
    "password",
    "auth_id",
    "app_sid",
    "auth",
)
_KEYS = "|".join(_SECRET_KEYS)
_KEYS_NOT_AUTH = "|".join(k for k in _SECRET_KEYS if k != "auth")

# A key starts where an identifier starts, or right after a percent-escape ("%5B" of
# auth%5Bkey%5D, "%26" of an encoded query, "%2526" when double-encoded as in batch commands):
# an escape ends in a hex digit, which the identifier test alone would take for a longer name.
_KEY_START = r"(?:(?<=%[0-9A-F]{2})|(?<=%25[0-9A-F]{2})|(?<![A-Za-z0-9_]))"
# "]" of auth[key], raw or URL-encoded once or twice (batch commands are double-encoded).
_KEY_CLOSE = r"(?:\]|%5D|%255D)?"
# The key must end here: "access_token_hash=" is not "access_token=".
_KEY_END = r"(?![A-Za-z0-9_])"
_EQUALS = r"[ \t]*(?:=|%3D|%253D)[ \t]*"

_QUOTED = r"""(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""  # a JSON or repr string
# Value alternatives, most specific first. Each keeps its quotes so the output stays readable.
_VALUE = (
    r"(?P<value>"
    + _QUOTED  # JSON string or Python repr string
    + r'|\\"(?:(?!\\").)*\\"'  # JSON string inside a JSON string: \"...\"
    r"|[\"'][^\"'\n]*"  # unterminated quote (truncated log line): to end of line
    r"|[^\s&\"'<>;{}\[\]\\]+"  # bare value: up to whitespace, &, quotes, brackets
    r")"
)

# The last pattern (code/state) is the one not keyed on _SECRET_KEYS: redact() relies on that.
_PATTERNS = [
    # key=value, auth[key]=value, auth%5Bkey%5D%3Dvalue, key='value' (kwargs repr)
    re.compile(_KEY_START + rf"(?:{_KEYS}){_KEY_END}{_KEY_CLOSE}{_EQUALS}" + _VALUE, re.I),
    # "key": value / 'key': value / \"key\": value  (JSON, dict repr, escaped JSON)
    re.compile(rf"""(?:\\?["'])(?:{_KEYS})(?:\\?["'])[ \t]*:[ \t]*""" + _VALUE, re.I),
    # ('key', 'value')  -- repr of werkzeug MultiDict / list of pairs
    re.compile(
        rf"""(?P<q>["'])(?:{_KEYS})(?P=q)[ \t]*,[ \t]*(?P<value>{_QUOTED})""",
        re.I,
    ),
    # key: value  (YAML / log style); "auth" excluded, "auth: failed" is ordinary prose
    re.compile(_KEY_START + rf"(?:{_KEYS_NOT_AUTH}){_KEY_END}[ \t]*:[ \t]*" + _VALUE, re.I),
    # OAuth authorization code and state, only as query/form keys; the value stops at "%" so
    # an encoded "&" (%26) ends it and the rest of an encoded query stays readable.
    re.compile(
        r"(?:(?<=[?&])|(?<=%3F)|(?<=%26)|(?<=%253F)|(?<=%2526)|^)(?:code|state)"
        + _EQUALS
        + r"(?P<value>[^\s&\"'<>;{}\[\]\\%]+)",
        re.I | re.M,
    ),
]
# Necessary conditions of the patterns above, for redact()'s quick skip.
_KEY_HINT = re.compile(rf"(?:{_KEYS}){_KEY_END}", re.I)
_CODE_HINT = re.compile(r"(?:code|state)" + _EQUALS, re.I)
_BEARER = re.compile(r"\b(Bearer)[ \t]+[A-Za-z0-9\-._~+/]+=*", re.I)
_TOKEN_SHAPED = re.compile(r"[A-Za-z0-9]{40,}")


def _replace_value(match: re.Match[str]) -> str:
    """Keep the key, separator and quotes of a match; replace only what is between the quotes."""
    value = match.group("value")
    start, end = match.span("value")
    prefix = match.string[match.start() : start]
    if value.startswith('\\"') and value.endswith('\\"') and len(value) >= 4:
        inner = '\\"' + REDACTED + '\\"'
    elif value[:1] in "\"'" and len(value) >= 2 and value[-1] == value[0]:
        inner = value[0] + REDACTED + value[0]
    elif value[:1] in "\"'":
        inner = value[0] + REDACTED  # unterminated quote
    else:
        inner = REDACTED
    return prefix + inner + match.string[end : match.end()]


def redact(text: str) -> str:
    """``text`` with every secret value this module knows about replaced by ``[REDACTED]``.

    Each pattern runs only when what it cannot match without is in the text (one cheap scan
    without look-behinds): the key patterns need a whole key of ``_SECRET_KEYS``, the
    code/state one "code" or "state" before an equals sign, the header one "bearer". The
    result is the same; a text without them (most REST answers) skips the look-behind scans,
    ~2 ms each on a 15 KB batch answer, on the REST log's thread that shares the GIL with views.
    """
    if not text:
        return text
    if _KEY_HINT.search(text):
        for pattern in _PATTERNS[:-1]:
            text = pattern.sub(_replace_value, text)
    if _CODE_HINT.search(text):
        text = _PATTERNS[-1].sub(_replace_value, text)
    if "bearer" in text.lower():
        text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _TOKEN_SHAPED.sub(REDACTED, text)


# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_BLANK_RECORD = logging.LogRecord("", logging.INFO, "", 0, "", (), None)
_STANDARD_ATTRS = frozenset(_BLANK_RECORD.__dict__) | {"asctime", "taskName"}
_MARK = "_leadcard_redacted"
_exception_formatter = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Owns redaction of a whole log record; never drops a record and never raises."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Render and redact message, traceback, stack and string extras in place."""
        if getattr(record, _MARK, False):
            return True  # already done by a filter earlier on the way (logger, other handler)
        try:
            self._redact_record(record)
        except Exception:  # pragma: no cover - last line of defence
            # A filter that raises would break the caller's code path; drop content instead.
            record.msg, record.args = f"{REDACTED} (log record could not be redacted)", None
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        setattr(record, _MARK, True)
        return True

    @staticmethod
    def _redact_record(record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:
            # Mismatched %-args: keep the format string, drop the args (they may hold secrets).
            message = f"{record.msg} [log arguments could not be formatted]"
        # Render first: a secret split between the format string and its args is caught too.
        record.msg, record.args = redact(message), None

        if record.exc_info:
            # Format here, then drop exc_info so no later formatter renders the raw traceback
            # (exception messages such as HTTP errors quote URLs with tokens in them).
            record.exc_text = _exception_formatter.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)

        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, name, redact(value))


DEFAULT_LOGGERS = ("gunicorn.error", "gunicorn.access", "werkzeug")
_FILTER = RedactingFilter()


def install(logger_names: Iterable[str] | None = None) -> RedactingFilter:
    """Attach the shared ``RedactingFilter`` to every handler that exists now; idempotent.

    Filters on a *logger* do not see records propagated from its child loggers, so the filter
    goes on *handlers*: the root logger's, the named loggers' (default: gunicorn and werkzeug),
    every other existing logger's, and ``logging.lastResort``. The named loggers also get it
    themselves so records logged straight to them are covered by handlers added later.
    Call again after (re)configuring logging; handlers created later are not covered.
    """
    names = DEFAULT_LOGGERS if logger_names is None else tuple(logger_names)
    named = [logging.getLogger(name) for name in names]
    loggers = [logging.getLogger(), *named]
    loggers += [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    handlers = [handler for lg in loggers for handler in lg.handlers]
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for target in [*handlers, *named]:
        if not any(isinstance(f, RedactingFilter) for f in target.filters):
            target.addFilter(_FILTER)
    return _FILTER


def secret_sentinel_check(text: str, secrets: Iterable[str]) -> list[str]:
    """The secrets found in ``text``, raw or URL-encoded (for tests that grep captured logs)."""
    return [s for s in secrets if s and (s in text or quote(s, safe="") in text)]
