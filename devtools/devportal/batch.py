"""The ``batch`` method: up to 50 ``"method?query"`` sub-commands in one HTTP request.

Owns batch mechanics per RD settings/how-to-call-rest-api/batch.md and settings/how-to-call-rest-api/batch.md:
``halt`` (stop at the first error), ``cmd`` as an object or a list, back-references
``$result[key][FIELD]`` / ``$result[key][0][FIELD]`` (also ``$result_total`` etc.),
per-command errors collected in ``result_error``, the 50-command limit
(``ERROR_BATCH_LENGTH_EXCEEDED``) and the nested-batch ban
(``ERROR_BATCH_METHOD_NOT_ALLOWED``).  The five maps are serialised like PHP arrays:
empty -> ``[]``, keys 0..n-1 -> JSON list (real captures in payloads/batch_*).
The outer batch is one HTTP request for the rate limit; each sub-command runs
through ``rest.execute`` and counts against its own method's time budget.
"""

from __future__ import annotations

import re
from typing import Any

from .envelope import RestError, time_object
from .params import get_ci, parse_php_query, php_json_map
from .rest import execute
from .state import Grant, Portal, World

MAX_COMMANDS = 50
_REF_RE = re.compile(r"\$(result_error|result_total|result_next|result_time|result)((?:\[[^\[\]]*\])+)")
_PART_RE = re.compile(r"\[([^\[\]]*)\]")


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "y", "yes")


def _lookup(maps: dict, source: str, path: str) -> Any:
    node: Any = maps[source]
    for part in _PART_RE.findall(path):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                return None
        else:
            return None
        if node is None:
            return None
    return node


def _substitute(value: Any, maps: dict) -> Any:
    """Resolve back-references inside parsed sub-command parameters.

    A value that is exactly one reference takes the referenced value as is (it may
    be a list); references embedded in text are replaced by their string form.  A
    reference to something missing becomes "" (the sub-call then fails on its own).
    """
    if isinstance(value, dict):
        return {k: _substitute(v, maps) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, maps) for v in value]
    if not isinstance(value, str) or "$result" not in value:
        return value
    whole = _REF_RE.fullmatch(value.strip())
    if whole:
        found = _lookup(maps, whole.group(1), whole.group(2))
        return "" if found is None else found

    def repl(m: re.Match) -> str:
        found = _lookup(maps, m.group(1), m.group(2))
        return "" if found is None or isinstance(found, (dict, list)) else str(found)
    return _REF_RE.sub(repl, value)


def run_batch(world: World, portal: Portal, grant: Grant, params: dict) -> tuple[dict, list[str]]:
    """Returns (the batch ``result`` object, sub-method names for the counters)."""
    halt = _truthy(get_ci(params, "halt", default=0))
    cmd = get_ci(params, "cmd", default={})
    if isinstance(cmd, list):
        items = [(str(i), v) for i, v in enumerate(cmd)]
    elif isinstance(cmd, dict):
        items = [(str(k), v) for k, v in cmd.items()]
    else:
        items = []
    maps: dict[str, dict] = {"result": {}, "result_error": {}, "result_total": {},
                             "result_next": {}, "result_time": {}}
    sub_methods: list[str] = []
    for index, (key, command) in enumerate(items):
        if index >= MAX_COMMANDS:
            maps["result_error"][key] = RestError("ERROR_BATCH_LENGTH_EXCEEDED").body()
            if halt:
                break
            continue
        name, _, query = str(command).partition("?")
        name = name.strip()
        sub_methods.append(name.lower())
        sub_params = _substitute(parse_php_query(query), maps)
        sub_params.pop("auth", None)
        try:
            if name.lower() in ("batch", "batch.json"):
                raise RestError("ERROR_BATCH_METHOD_NOT_ALLOWED")
            result, extra, timing = execute(world, portal, grant, name, sub_params, batch_sub=True)
        except RestError as err:
            maps["result_error"][key] = err.body()
            if halt:
                break
            continue
        maps["result"][key] = result
        if "total" in extra:
            maps["result_total"][key] = extra["total"]
        if "next" in extra:
            maps["result_next"][key] = extra["next"]
        maps["result_time"][key] = time_object(timing["start"], timing["finish"], portal.tz,
                                               operating=timing["operating"])
    return {k: php_json_map(v) for k, v in maps.items()}, sub_methods
