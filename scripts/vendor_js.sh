#!/usr/bin/env bash
# Vendor the Bitrix24 frame library (@bitrix24/b24jssdk UMD bundle, global
# `B24Js`) into static/vendor/ and print its SRI hash.
#
#   scripts/vendor_js.sh            # fetch the pinned version, check, install
#   scripts/vendor_js.sh --check    # only verify the committed file's hash
#
# Why `npm pack` and not `npm install`: the UMD bundle already inlines its
# dependencies (axios, luxon, qs-esm), so we take one file out of the
# published tarball and commit it; no node_modules, no Node at deploy time,
# no runtime CDN. To upgrade: change VERSION, run this, put the printed hash
# in leadcard/web/assets.py (B24JSSDK_VERSION / B24JSSDK_INTEGRITY) and rename the
# file reference there; tests/unit/test_assets.py recomputes the hash.
set -euo pipefail

VERSION="2.2.0"
PACKAGE="@bitrix24/b24jssdk"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="$ROOT/static/vendor/b24jssdk-$VERSION.min.js"

sri() {
    printf 'sha384-%s\n' "$(openssl dgst -sha384 -binary "$1" | openssl base64 -A)"
}

expected_sri() {
    sed -n 's/^B24JSSDK_INTEGRITY = "\(sha384-[^"]*\)"$/\1/p' "$ROOT/leadcard/web/assets.py"
}

if [[ "${1:-}" == "--check" ]]; then
    actual="$(sri "$TARGET")"
    expected="$(expected_sri)"
    if [[ "$actual" != "$expected" ]]; then
        echo "SRI mismatch for $TARGET: file $actual, assets.py $expected" >&2
        exit 1
    fi
    echo "ok $TARGET $actual"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null)
tarball="$(ls "$work"/*.tgz)"
tar -xzf "$tarball" -C "$work" package/dist/umd/index.min.js

mkdir -p "$(dirname "$TARGET")"
# Drop the trailing `//# sourceMappingURL=index.min.js.map`: the map is not vendored, and
# DevTools would log a 404 for it inside every card (see leadcard/web/assets.py).
sed '/^\/\/# sourceMappingURL=/d' "$work/package/dist/umd/index.min.js" > "$TARGET"

echo "vendored $PACKAGE@$VERSION -> ${TARGET#"$ROOT"/}"
echo "integrity: $(sri "$TARGET")"
