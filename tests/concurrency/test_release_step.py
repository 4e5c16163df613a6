"""The Procfile, run as a platform runs it: `release:` migrates a shared PostgreSQL, `web:` serves.

Issue 10 defect 1: on an empty (or older) PostgreSQL database the release line exited 1,
because building the app for the `flask` command checked the schema before `db upgrade` could
change it. Each case runs the Procfile's lines exactly as written, in a shell, with the
virtual environment's commands first on PATH.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.concurrency.concurrency_harness import ROOT, Stack, wait_until


def procfile_line(kind: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == kind:
            return command.strip()
    raise AssertionError(f"Procfile has no {kind}: line")


def shell_env(stack: Stack, **extra: str) -> dict[str, str]:
    env = stack.env(**extra)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def revision(database_url: str) -> str | None:
    from leadcard.storage import db

    engine = db.make_engine(database_url)
    try:
        return db.current_revision(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("start_at", [None, "0001"], ids=["empty", "at-0001"])
def test_procfile_release_then_web_serves_cards(pg_database_url, tmp_path, start_at):
    from leadcard.storage import db

    database_url = pg_database_url

    if start_at:
        engine = db.make_engine(database_url)
        db.upgrade(engine, start_at)
        engine.dispose()
    stack = Stack(tmp_path, database_url, DB_AUTO_MIGRATE="")  # the production default: off
    stack.sim.start()
    stack.settings["B24_OAUTH_URL"] = stack.sim.oauth_url
    web = None
    try:
        # The web line alone refuses an old schema, naming the command to run.
        early = subprocess.run(["bash", "-c", f"timeout 60 {procfile_line('web')}"], cwd=ROOT,
                               env=shell_env(stack, HOST="127.0.0.1", PORT=str(stack.port),
                                             WEB_CONCURRENCY="1"),
                               capture_output=True, text=True, timeout=90)
        assert early.returncode != 0
        assert "flask --app app db upgrade" in early.stdout + early.stderr

        release = subprocess.run(["bash", "-c", procfile_line("release")], cwd=ROOT,
                                 env=shell_env(stack), capture_output=True, text=True, timeout=120)
        assert release.returncode == 0, release.stdout + release.stderr
        head = revision(database_url)
        assert head is not None and head == _head()
        assert f"database at revision {head}" in release.stdout

        log = open(tmp_path / "web.log", "w")
        web = subprocess.Popen(["bash", "-c", f"exec {procfile_line('web')}"], cwd=ROOT,
                               env=shell_env(stack, HOST="127.0.0.1", PORT=str(stack.port),
                                             WEB_CONCURRENCY="1", GUNICORN_THREADS="4"),
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

        def healthy() -> bool:
            assert web.poll() is None, (tmp_path / "web.log").read_text()[-3000:]
            try:
                return requests.get(stack.app_url + "/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(healthy, 60, "the web line's gunicorn answers /healthz", interval=0.2)
        stack.install("a")
        card = stack.placement("a", user_id=1, lead_id=101)
        assert card.status_code == 200, card.text[:500]
        assert stack.lead_title("a", 101) in card.text
    finally:
        if web is not None and web.poll() is None:
            os.killpg(web.pid, 15)
            try:
                web.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(web.pid, 9)
                web.wait(timeout=5)
        stack.sim.stop()


def _head() -> str:
    """The newest migration file's revision (its name starts with it: 0002_…)."""
    versions = ROOT / "leadcard" / "storage" / "migrations" / "versions"
    numbers = sorted(m.group(1) for p in versions.glob("*.py") if (m := re.match(r"(\d{4})_", p.name)))
    assert numbers, f"no migrations in {versions}"
    return numbers[-1]


def test_flask_commands_other_than_db_upgrade_still_refuse_an_old_schema(pg_database_url,
                                                                          tmp_path):
    database_url = pg_database_url
    stack = Stack(tmp_path, database_url, DB_AUTO_MIGRATE="")
    result = subprocess.run(["bash", "-c", "flask --app app portals list"], cwd=ROOT,
                            env=shell_env(stack, B24_OAUTH_URL="http://127.0.0.1:9"),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "flask --app app db upgrade" in result.stdout + result.stderr
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            assert not sa.inspect(conn).has_table("portals")  # nothing was created
    finally:
        engine.dispose()
