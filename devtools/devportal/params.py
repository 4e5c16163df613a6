"""PHP-style request parameters: what Bitrix24 accepts and what it sends.

Owns three conversions the simulator needs on the wire:

* parsing ``FILTER[ID][0]=1`` / ``cmd[lead]=...`` form or query pairs into nested
  dicts/lists (what PHP's ``parse_str`` does for Bitrix24);
* flattening nested data back into PHP-style pairs for the form-encoded POSTs the
  portal pushes to the app (events, frame POSTs);
* serialising a PHP array the way ``json_encode`` does (empty map -> ``[]``,
  keys ``0..n-1`` in order -> JSON list), a quirk visible in real ``batch`` answers
  (settings/how-to-call-rest-api/batch.md; payloads/batch_*.fast_bitrix24_real.json).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART_RE = re.compile(r"\[([^\[\]]*)\]")


def _next_index(node: dict) -> str:
    ints = [int(k) for k in node if isinstance(k, str) and k.isdigit()]
    return str(max(ints) + 1 if ints else 0)


def _listify(value: Any) -> Any:
    """Turn dicts keyed exactly "0".."n-1" (in order) into lists, recursively."""
    if isinstance(value, dict):
        value = {k: _listify(v) for k, v in value.items()}
        keys = list(value.keys())
        if keys and keys == [str(i) for i in range(len(keys))]:
            return [value[k] for k in keys]
        return value
    if isinstance(value, list):
        return [_listify(v) for v in value]
    return value


def parse_php_pairs(pairs: Iterable[tuple[str, str]]) -> dict:
    """Parse ``(key, value)`` pairs with PHP bracket keys into nested data."""
    root: dict = {}
    for key, value in pairs:
        match = _KEY_RE.match(key)
        if not match:
            root[key] = value
            continue
        parts = [match.group(1)] + _PART_RE.findall(match.group(2))
        node = root
        for i, part in enumerate(parts):
            if part == "":
                part = _next_index(node)
            if i == len(parts) - 1:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return _listify(root)


def parse_php_query(query: str) -> dict:
    """``parse_str`` for a raw query string (used for batch sub-commands)."""
    return parse_php_pairs(parse_qsl(query, keep_blank_values=True))


def flatten_php(data: Mapping[str, Any], prefix: str | None = None) -> list[tuple[str, str]]:
    """Nested data -> PHP-style ``auth[access_token]`` pairs; every value a string.

    Booleans become ``1``/``0`` and None becomes an empty string, as PHP's
    ``http_build_query`` would send them.
    """
    out: list[tuple[str, str]] = []
    items = data.items() if isinstance(data, Mapping) else enumerate(data)
    for key, value in items:
        full = f"{prefix}[{key}]" if prefix is not None else str(key)
        if isinstance(value, (Mapping, list, tuple)):
            out.extend(flatten_php(value, full))
        elif value is None:
            out.append((full, ""))
        elif value is True or value is False:
            out.append((full, "1" if value else "0"))
        else:
            out.append((full, str(value)))
    return out


def php_build_query(data: Mapping[str, Any]) -> str:
    return urlencode(flatten_php(data))


def php_json_map(mapping: Mapping[str, Any]) -> Any:
    """How PHP's json_encode renders an associative array.

    Empty -> ``[]``; keys exactly "0".."n-1" in insertion order -> a list;
    anything else -> an object.  (FB real batch captures show ``"result_error": []``
    and list-shaped maps when the cmd keys were 0,1,...)
    """
    keys = [str(k) for k in mapping.keys()]
    if not keys:
        return []
    if keys == [str(i) for i in range(len(keys))]:
        return list(mapping.values())
    return {str(k): v for k, v in mapping.items()}


def get_ci(params: Mapping[str, Any], *names: str, default: Any = None) -> Any:
    """Case-insensitive parameter lookup (Bitrix24 accepts ``id`` and ``ID``)."""
    lowered = {str(k).lower(): v for k, v in params.items()}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return default


def as_list(value: Any) -> list:
    """A scalar, list, or PHP-array-as-dict, as a list of values."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [value]
