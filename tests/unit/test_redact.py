"""Redaction: every shape a secret can take in our logs, the logging filter, and install()."""

import io
import json
import logging
import string
from urllib.parse import urlencode

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from leadcard.core.redact import REDACTED, RedactingFilter, install, redact, secret_sentinel_check

ACCESS = "e3c4a864006e9d2c6b1a0f5e4d3c2b1a0f9e8d7c6b5a4e3c4a864006e9d2c6b1a0f5"  # 70 hex
REFRESH = "d2b3a753ff5d8c1b5a09f4d3c2b1a09f8e7d6c5b4a3d2b3a753ff5d8c1b5a09f4d3"
MEMBER_ID = "a223c6b3710f85df22e9377d6c4f7553"  # 32 hex: an identifier, must stay visible
SHORT = "s3cr3t-v4lue"  # too short for the token-shaped rule: only the key rule can catch it


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"AUTH_ID={SHORT}&member_id={MEMBER_ID}", f"member_id={MEMBER_ID}"),
        (f"REFRESH_ID={SHORT}&AUTH_EXPIRES=3600", "AUTH_EXPIRES=3600"),
        (f"auth={SHORT}&id=42", "id=42"),
        (f"auth[access_token]={SHORT}&auth[member_id]={MEMBER_ID}", f"auth[member_id]={MEMBER_ID}"),
        (f"auth%5Baccess_token%5D={SHORT}&auth%5Bdomain%5D=x.bitrix24.de", "x.bitrix24.de"),
        (f"auth%5brefresh_token%5d%3D{SHORT}", "auth%5brefresh_token%5d%3D"),
        (f'{{"access_token": "{SHORT}", "member_id": "{MEMBER_ID}"}}', MEMBER_ID),
        (f"{{'refresh_token': '{SHORT}', 'expires': 3600}}", "'expires': 3600"),
        (f"GET /rest/crm.lead.get?id=7&access_token={SHORT} HTTP/1.1", "HTTP/1.1"),
        (f"application_token={SHORT}", "application_token="),
        (f"APPLICATION_TOKEN={SHORT}&PLACEMENT=CRM_LEAD_DETAIL_TAB", "CRM_LEAD_DETAIL_TAB"),
        (f"client_secret={SHORT}&grant_type=refresh_token", "grant_type=refresh_token"),
        (f"TOKEN_KEYS={SHORT},{SHORT}x other", " other"),
        (f"SECRET_KEY = '{SHORT}'", "SECRET_KEY = '"),
        (f"password: {SHORT} (from env)", "(from env)"),
        (f"login failed password={SHORT}", "login failed"),
        (f"GET /oauth/callback?code={SHORT}&state=xyz", "state=[REDACTED]"),
        (f"GET /oauth/callback?state={SHORT}&code=x HTTP/1.1", " HTTP/1.1"),
        (f"token exchange body: grant_type=authorization_code&code={SHORT}", "grant_type="),
        (f"Authorization: Bearer {SHORT}", "Authorization: Bearer "),
        (f"headers={{'Authorization': 'bearer {SHORT}'}}", "Authorization"),
        (f"[('AUTH_ID', '{SHORT}'), ('member_id', '{MEMBER_ID}')]", MEMBER_ID),
        (f'{{"body": {json.dumps(json.dumps({"access_token": SHORT}))}}}', '\\"access_token\\"'),
        (f'"refresh_token": "{SHORT}', '"refresh_token": "'),  # truncated line
        (f"crm.lead.get%3Fid%3D1%26auth%3D{SHORT}", "crm.lead.get%3Fid%3D1%26auth%3D"),
        (f"cmd=crm.lead.get%253Fid%253D1%2526auth%253D{SHORT}", "cmd=crm.lead.get"),
        (f'{{"auth": {{"access_token": "{SHORT}", "domain": "b.bitrix24.ru"}}}}', "b.bitrix24.ru"),
        (f"APP_SID={SHORT}&LANG=en", "LANG=en"),
    ],
)
def test_each_shape(text, kept):
    out = redact(text)
    assert SHORT not in out
    assert REDACTED in out
    assert kept in out


@pytest.mark.parametrize(
    "text",
    [
        f"member_id={MEMBER_ID} status code=500",
        '{"error": "expired_token", "code": "QUERY_LIMIT_EXCEEDED"}',
        "auth: failed for user 42",  # prose, not a key
        "access_token_expires=3600 oauth_host=oauth.bitrix.info",
        "auth[member_id]=abc&auth[domain]=portal.bitrix24.com",
        f"uuid 123e4567-e89b-12d3-a456-426614174000 member {MEMBER_ID}",
        "x" * 39,
    ],
)
def test_harmless_text_is_untouched(text):
    assert redact(text) == text


def test_token_shaped_strings_are_redacted_anywhere():
    text = f"renewed {ACCESS} and {REFRESH}; portal {MEMBER_ID}; key " + "Ab1" * 14
    out = redact(text)
    assert ACCESS not in out and REFRESH not in out and "Ab1" * 14 not in out
    assert MEMBER_ID in out


def test_install_payload_json_dump():
    payload = {
        "event": "ONAPPINSTALL",
        "data": {"VERSION": "1", "LANGUAGE_ID": "en"},
        "auth": {
            "access_token": SHORT,
            "refresh_token": REFRESH,
            "application_token": "51856fefc120afa4b628cc82d3935cce",
            "member_id": MEMBER_ID,
            "domain": "portal.bitrix24.com",
        },
    }
    for dumped in (json.dumps(payload), json.dumps(payload, indent=2), repr(payload)):
        out = redact(dumped)
        assert (
            secret_sentinel_check(out, [SHORT, REFRESH, "51856fefc120afa4b628cc82d3935cce"]) == []
        )
        assert MEMBER_ID in out and "portal.bitrix24.com" in out and "ONAPPINSTALL" in out


def test_urlencoded_form_body():
    body = urlencode(
        {
            "auth[access_token]": SHORT,
            "auth[refresh_token]": "r-" + SHORT,
            "auth[member_id]": MEMBER_ID,
            "event": "ONAPPUNINSTALL",
        }
    )
    out = redact(body)
    assert secret_sentinel_check(out, [SHORT, "r-" + SHORT]) == []
    assert MEMBER_ID in out and "ONAPPUNINSTALL" in out


def test_redact_is_idempotent():
    text = f'AUTH_ID={SHORT} Bearer {SHORT} {ACCESS} "password": "{SHORT}"'
    once = redact(text)
    assert redact(once) == once


def test_secret_sentinel_check_finds_raw_and_urlencoded():
    assert secret_sentinel_check("a=x%2By", ["x+y", "absent", ""]) == ["x+y"]
    assert secret_sentinel_check(f"...{SHORT}...", [SHORT]) == [SHORT]


# --- property: a secret under a known key never survives ---

KNOWN_KEYS = [
    "AUTH_ID",
    "REFRESH_ID",
    "auth",
    "access_token",
    "refresh_token",
    "application_token",
    "APPLICATION_TOKEN",
    "client_secret",
    "TOKEN_KEYS",
    "SECRET_KEY",
    "password",
]
UNRESERVED = string.ascii_letters + string.digits + "-_.~"
secrets_ = st.text(alphabet=UNRESERVED, min_size=6, max_size=90)
other_keys = st.sampled_from(["id", "member_id", "DOMAIN", "LANG", "PLACEMENT", "status", "x"])
other_values = st.text(alphabet=string.ascii_letters + string.digits + " -_.,:/", max_size=20)


def _shapes(key, secret, others):
    """Every way our code or a library might print a key/value pair, with one secret in it."""
    pairs = list(others.items())
    pairs.insert(len(pairs) // 2, (key, secret))
    mapping = dict(pairs)
    nested = {"event": "ONCRMLEADUPDATE", "auth": {key: secret, "member_id": MEMBER_ID}}
    yaml_style = [] if key.lower() == "auth" else [f"settings:\n  {key}: {secret}\n  x: 1"]
    return yaml_style + [
        urlencode(pairs),
        urlencode([(f"auth[{key}]", secret), *others.items()]),
        "&".join(f"{k}={v}" for k, v in pairs),
        "&".join([f"auth[{key}]={secret}", *(f"auth[{k}]={v}" for k, v in others.items())]),
        json.dumps(mapping),
        json.dumps(nested, indent=2),
        json.dumps({"payload": json.dumps(mapping)}),
        repr(mapping),
        repr(pairs),
        " ".join(f"{k}={v!r}" for k, v in pairs),
        f"https://portal.bitrix24.com/rest/crm.lead.get.json?id=1&{urlencode(pairs)}",
        f"calling batch cmd=crm.lead.get%3Fid%3D1%26{key}%3D{secret}%26x%3D1",
    ]


def _occurs_once(needle, text):
    first = text.find(needle)
    return first >= 0 and text.find(needle, first + 1) == -1


def _case(key, variant):
    return {0: key, 1: key.lower(), 2: key.upper(), 3: key.title()}[variant]


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(KNOWN_KEYS),
    variant=st.integers(0, 3),
    secret=secrets_,
    others=st.dictionaries(other_keys, other_values, max_size=4),
)
def test_property_secret_under_known_key_never_survives(key, variant, secret, others):
    key = _case(key, variant)
    others.pop(key, None)
    assume(secret not in REDACTED)
    for text in _shapes(key, secret, others):
        # The secret must occur only where we put it, otherwise "still present" proves nothing.
        assume(_occurs_once(secret, text))
        out = redact(text)
        assert secret not in out, text


@settings(max_examples=200, deadline=None)
@given(secret=secrets_, prefix=other_values, suffix=other_values)
def test_property_oauth_code_in_query(secret, prefix, suffix):
    text = f"GET /oauth/callback?{urlencode({'state': prefix, 'code': secret, 'x': suffix})}"
    assume(_occurs_once(secret, text) and secret not in REDACTED)
    assert secret not in redact(text)


@settings(max_examples=200, deadline=None)
@given(
    token=st.text(alphabet=string.ascii_letters + string.digits, min_size=40, max_size=120),
    left=st.text(alphabet=string.printable, max_size=30),
    right=st.text(alphabet=string.printable, max_size=30),
)
def test_property_token_shaped_strings_never_survive(token, left, right):
    assert token not in redact(left + token + right)


# --- the logging filter ---


@pytest.fixture
def restore_logging():
    """Undo every filter install() adds, so other tests see logging as they left it."""
    targets = [logging.getLogger(), logging.lastResort]
    targets += [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    saved = {}
    for target in targets:
        saved[id(target)] = (target, list(target.filters))
        for handler in getattr(target, "handlers", []):
            saved[id(handler)] = (handler, list(handler.filters))
    created = []
    yield created
    for target, filters in saved.values():
        target.filters[:] = filters
    for logger, handler in created:
        logger.removeHandler(handler)


def _capture(logger_name, created, *, install_on=None):
    """A StreamHandler on ``logger_name`` writing to a buffer; the logger stops propagating."""
    logger = logging.getLogger(logger_name)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s %(context)s"))
    logger.addHandler(handler)
    created.append((logger, handler))
    install([install_on or logger_name])
    return logger, buffer


def test_filter_redacts_message_built_from_args(restore_logging):
    logger, buffer = _capture("leadcard.test.args", restore_logging)
    logger.info(
        "install for %s with %s and %r",
        MEMBER_ID,
        f"AUTH_ID={SHORT}",
        {"refresh_token": SHORT},
        extra={"context": f"access_token={SHORT}"},
    )
    out = buffer.getvalue()
    assert secret_sentinel_check(out, [SHORT]) == []
    assert MEMBER_ID in out and out.count(REDACTED) == 3


def test_filter_redacts_secret_split_between_format_and_args(restore_logging):
    logger, buffer = _capture("leadcard.test.split", restore_logging)
    logger.warning("refresh failed: refresh_token=%s", SHORT, extra={"context": "-"})
    assert SHORT not in buffer.getvalue()


def test_filter_redacts_tracebacks_and_chained_causes(restore_logging):
    logger, buffer = _capture("leadcard.test.exc", restore_logging)

    def call_bitrix():
        raise ConnectionError(f"HTTPSConnectionPool: /rest/crm.lead.get?auth={SHORT}")

    try:
        try:
            call_bitrix()
        except ConnectionError as exc:
            raise RuntimeError(f"upstream failed, token {ACCESS}") from exc
    except RuntimeError:
        logger.exception("card failed for %s", MEMBER_ID, extra={"context": "-"})

    out = buffer.getvalue()
    assert "Traceback (most recent call last)" in out and "call_bitrix" in out
    assert "ConnectionError" in out and "RuntimeError" in out
    assert secret_sentinel_check(out, [SHORT, ACCESS]) == []
    assert MEMBER_ID in out


def test_filter_on_every_handler_sees_the_same_redacted_record(restore_logging):
    logger, first = _capture("leadcard.test.two", restore_logging)
    second = io.StringIO()
    other = logging.StreamHandler(second)
    logger.addHandler(other)
    restore_logging.append((logger, other))
    install(["leadcard.test.two"])
    try:
        raise ValueError(f"Bearer {SHORT}")
    except ValueError:
        logger.error("x", exc_info=True, extra={"context": "-"})
    for buffer in (first, second):
        assert SHORT not in buffer.getvalue()
        assert "ValueError: Bearer [REDACTED]" in buffer.getvalue()


def test_filter_survives_bad_format_args(restore_logging):
    logger, buffer = _capture("leadcard.test.badargs", restore_logging)
    logger.error("two slots %s %s", f"auth={SHORT}", extra={"context": "-"})
    out = buffer.getvalue()
    assert "two slots" in out and SHORT not in out


def test_filter_redacts_stack_info(restore_logging):
    logger, buffer = _capture("leadcard.test.stack", restore_logging)

    def frame_with_secret(access_token=SHORT):
        logger.info("where am I", stack_info=True, extra={"context": f"auth={access_token}"})

    frame_with_secret()
    assert "Stack (most recent call last)" in buffer.getvalue()
    assert SHORT not in buffer.getvalue()


def test_install_covers_records_propagated_from_child_loggers(restore_logging):
    # gunicorn.error's handlers receive records from any child logger; a logger-level filter
    # would not see those, which is why install() puts the filter on handlers.
    parent, buffer = _capture("leadcard.test.parent", restore_logging)
    child = logging.getLogger("leadcard.test.parent.child.grandchild")
    child.warning("token %s", ACCESS, extra={"context": "-"})
    assert ACCESS not in buffer.getvalue()
    assert "leadcard.test.parent.child.grandchild" in buffer.getvalue()


def test_install_reaches_root_handlers_and_is_idempotent(restore_logging):
    root = logging.getLogger()
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    root.addHandler(handler)
    restore_logging.append((root, handler))
    install([])
    install([])
    assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    assert any(isinstance(f, RedactingFilter) for f in logging.lastResort.filters)
    logging.getLogger("leadcard.test.unconfigured.module").warning("refresh_token=%s", SHORT)
    assert "refresh_token=[REDACTED]" in buffer.getvalue()


def test_default_install_covers_gunicorn_and_werkzeug(restore_logging):
    names = ["gunicorn.error", "gunicorn.access", "werkzeug"]
    buffers = {}
    for name in names:
        logger = logging.getLogger(name)
        buffers[name] = io.StringIO()
        handler = logging.StreamHandler(buffers[name])
        logger.addHandler(handler)
        restore_logging.append((logger, handler))
    install()
    saved = {name: logging.getLogger(name).propagate for name in names}
    try:
        for name in names:
            logging.getLogger(name).propagate = False
            logging.getLogger(name).warning(
                '127.0.0.1 "GET /oauth/callback?code=%s&state=1 HTTP/1.1" 302', SHORT
            )
    finally:
        for name, value in saved.items():
            logging.getLogger(name).propagate = value
    for name in names:
        assert "code=[REDACTED]&state=[REDACTED] HTTP" in buffers[name].getvalue(), name


def _every_pattern(text: str) -> str:
    """redact() without its quick skips: every pattern, always."""
    from leadcard.core import redact as module
    for pattern in module._PATTERNS:
        text = pattern.sub(module._replace_value, text)
    text = module._BEARER.sub(lambda m: f"{m.group(1)} {module.REDACTED}", text)
    return module._TOKEN_SHAPED.sub(module.REDACTED, text)


@pytest.mark.parametrize("text", [
    '{"result": {"AUTHOR_ID": "2", "measureCode": 796, "STATE": "ok"}}',
    "show_file.php?auth=&ownerId=101&fileId=5",
    "GET /oauth/callback?code=abc123&state=xyz HTTP/1.1",
    "Authorization: Bearer abcdef0123456789",
    '{"access_token": "s3cr3t", "refresh_token": \'r\', "x": "AUTH_ID=zz"}',
    "cmd[lead]=crm.lead.get%3Fid%3D1%26auth%3Dtok",
    "plain prose about an author and a barcode, nothing secret",
    "a" * 45,
])
def test_quick_skips_change_nothing(text):
    assert redact(text) == _every_pattern(text)
