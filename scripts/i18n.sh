#!/usr/bin/env bash
# Message catalogs: extract → update → compile. Safe to run any number of times.
#
#   scripts/i18n.sh            # after adding or changing a UI string
#   scripts/i18n.sh --check    # CI-style: fail if the .pot/.po/.mo are stale
#
# 1. Extracts every marked string from leadcard/ and templates/ (babel.cfg)
#    into translations/messages.pot. Keywords: _, gettext, ngettext, N_
#    (cards.py labels), lazy_gettext/_l/lazy_ngettext (problems.py).
#    The .pot is only rewritten when its messages changed, so re-running
#    leaves git clean.
# 2. Merges the .pot into translations/<locale>/LC_MESSAGES/messages.po for
#    every catalog in LOCALES (the catalog directories of the language table in
#    leadcard/card/i18n.py; keep the two in step). A missing catalog is
#    reported, not created: an empty one would ship English under another
#    language's name. `scripts/i18n.sh --init <locale>` starts one from the
#    .pot. New strings arrive untranslated; translate them in the .po (or with
#    any PO editor) and run the script again.
# 3. Compiles .po → .mo. Both are committed: the app needs no build step.
#
# English is the source language and has no catalog. tests/unit/test_i18n.py
# fails while any msgid is untranslated or fuzzy, or a .mo is stale.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PYBABEL="${PYBABEL:-$ROOT/.venv/bin/pybabel}"
[[ -x "$PYBABEL" ]] || PYBABEL="pybabel"
LOCALES=(ru de es pt_BR fr it pl tr uk kk zh_Hans zh_Hant ja vi id ms th hi ar)
POT="translations/messages.pot"

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT

"$PYBABEL" -q extract -c TRANSLATORS: -F babel.cfg \
    -k N_ -k lazy_gettext -k _l -k lazy_ngettext:1,2 \
    --add-location=file --sort-by-file \
    --project="Lead Card" --copyright-holder="Lead Card" \
    --msgid-bugs-address="support@leadcard.invalid" \
    -o "$tmp" .

# Compare without the volatile creation date.
strip_date() { grep -v '^"POT-Creation-Date:' "$1" || true; }
if [[ -f "$POT" ]] && diff -q <(strip_date "$POT") <(strip_date "$tmp") >/dev/null; then
    pot_changed=0
else
    pot_changed=1
fi

if [[ "${1:-}" == "--check" ]]; then
    [[ $pot_changed == 0 ]] || { echo "translations/messages.pot is stale: run scripts/i18n.sh" >&2; exit 1; }
    "$ROOT/.venv/bin/python" -m pytest -q "$ROOT/tests/unit/test_i18n.py" -k catalog
    exit 0
fi

if [[ "${1:-}" == "--init" ]]; then
    [[ -n "${2:-}" ]] || { echo "usage: scripts/i18n.sh --init <locale>" >&2; exit 2; }
    [[ -f "$POT" ]] || cp "$tmp" "$POT"
    "$PYBABEL" -q init -D messages -i "$POT" -d translations -l "$2"
    echo "created translations/$2/LC_MESSAGES/messages.po: translate it, then run scripts/i18n.sh"
    exit 0
fi

if [[ $pot_changed == 1 ]]; then
    mkdir -p translations
    cp "$tmp" "$POT"
    echo "updated $POT"
fi

missing=()
present=()
for locale in "${LOCALES[@]}"; do
    po="translations/$locale/LC_MESSAGES/messages.po"
    if [[ ! -f "$po" ]]; then
        missing+=("$locale")
        continue
    fi
    present+=("$locale")
    if [[ $pot_changed == 1 ]]; then
        "$PYBABEL" -q update -D messages -i "$POT" -d translations -l "$locale" \
            --no-fuzzy-matching --ignore-obsolete
    fi
done

"$PYBABEL" compile -D messages -d translations --statistics 2>&1 | sed 's/^/  /'

untranslated=0
for locale in "${present[@]}"; do
    "$ROOT/.venv/bin/python" - "$POT" "translations/$locale/LC_MESSAGES/messages.po" <<'PY' || untranslated=1
import sys
from babel.messages.pofile import read_po

with open(sys.argv[1], "rb") as f:
    pot = read_po(f)
with open(sys.argv[2], "rb") as f:
    po = read_po(f)
missing = []
for message in pot:
    if not message.id:
        continue
    found = po.get(message.id, message.context)
    strings = found.string if found else None
    if isinstance(strings, tuple):
        ok = all(strings)
    else:
        ok = bool(strings)
    if not found or not ok or found.fuzzy:
        missing.append(message.id if isinstance(message.id, str) else message.id[0])
if missing:
    print(f"{sys.argv[2]}: {len(missing)} untranslated:", file=sys.stderr)
    for msgid in missing:
        print(f"  {msgid}", file=sys.stderr)
    sys.exit(1)
PY
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "no catalog yet: ${missing[*]} (these languages show English texts)" >&2
    untranslated=1
fi
if [[ $untranslated == 1 ]]; then
    echo "Translate the strings above in the .po files, then run scripts/i18n.sh again." >&2
    exit 1
fi
echo "catalogs up to date: ${present[*]}"
