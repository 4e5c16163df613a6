"""The vendored frame library matches its recorded SRI hash; nothing comes from a CDN."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from leadcard.web import assets

ROOT = Path(__file__).resolve().parents[2]
VENDORED = ROOT / "static" / assets.B24JSSDK_FILE


def test_vendored_file_exists_and_is_the_pinned_umd_bundle():
    assert VENDORED.is_file()
    head = VENDORED.read_bytes()[:400].decode("utf-8", "replace")
    assert "@package @bitrix24/b24jssdk" in head
    assert f"@version {assets.B24JSSDK_VERSION}" in head
    assert VENDORED.name == f"b24jssdk-{assets.B24JSSDK_VERSION}.min.js"
    assert "initializeB24Frame" in VENDORED.read_text(encoding="utf-8")


def test_sri_matches_the_vendored_file():
    digest = hashlib.sha384(VENDORED.read_bytes()).digest()
    expected = "sha384-" + base64.b64encode(digest).decode("ascii")
    assert assets.B24JSSDK_INTEGRITY == expected
    assert assets.sri_sha384(VENDORED) == expected


def test_sri_helper_detects_a_changed_file(tmp_path):
    copy = tmp_path / "lib.js"
    copy.write_bytes(VENDORED.read_bytes() + b"\n")
    assert assets.sri_sha384(copy) != assets.B24JSSDK_INTEGRITY


def test_integrity_format():
    assert re.fullmatch(r"sha384-[A-Za-z0-9+/]{64}", assets.B24JSSDK_INTEGRITY)


def test_vendor_script_pins_the_same_version():
    script = (ROOT / "scripts" / "vendor_js.sh").read_text()
    assert f'VERSION="{assets.B24JSSDK_VERSION}"' in script
    assert "npm pack" in script and "package/dist/umd/index.min.js" in script


def test_only_one_vendored_file_and_no_node_modules():
    vendor = sorted(p.name for p in (ROOT / "static" / "vendor").iterdir())
    assert vendor == [VENDORED.name, "licenses"]
    assert not (ROOT / "static" / "node_modules").exists()


def test_every_vendored_file_has_its_licence_and_a_notice():
    """THIRD_PARTY_NOTICES.md names each vendored file and a licence text that exists."""
    notices = (ROOT / "THIRD_PARTY_NOTICES.md").read_text()
    assert f"static/vendor/{VENDORED.name}" in notices
    assert "static/css/b24-tokens.css" in notices
    named = set(re.findall(r"static/vendor/licenses/([\w.-]+\.LICENSE)", notices))
    on_disk = {p.name for p in (ROOT / "static" / "vendor" / "licenses").iterdir()}
    assert named == on_disk and len(on_disk) == 5
    for name in on_disk:
        text = (ROOT / "static" / "vendor" / "licenses" / name).read_text()
        assert "Permission" in text or "Redistribution" in text, name


def test_no_runtime_cdn_in_pages_or_scripts():
    cdn = re.compile(r"unpkg\.com|jsdelivr|cdnjs|api\.bitrix24\.com|googleapis", re.I)
    for folder in ("templates", "static/js", "static/css"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file():
                assert not cdn.search(path.read_text(encoding="utf-8")), path
