"""Operator commands, `flask --app app GROUP COMMAND`: one module per group.

- `portals list|check|renew` (portals.py): the stored portals;
- `keys rotate`, `db upgrade` (maintenance.py): the token keys and the schema;
- `rest-log show|prune` (rest_log.py): the log of REST calls (Market rule).

Output never contains tokens. The command line is an entry point like `web`: it uses
flows and the layers below (docs/DESIGN.md), never the web package.
"""

from __future__ import annotations

from flask import Flask

from leadcard.cli.maintenance import db_cli, keys_cli
from leadcard.cli.portals import portals_cli
from leadcard.cli.rest_log import rest_log_cli


def register(app: Flask) -> None:
    for group in (portals_cli, keys_cli, db_cli, rest_log_cli):
        app.cli.add_command(group)
