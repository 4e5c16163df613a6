"""One OS process, one REST call with a portal's *stored* grant (what `portals check` does).

    python tests/concurrency/stored_call.py MEMBER_ID [--method app.info] [--wait-for-go]
                                            [--pause-before-store]

Builds the app with `create_app()` from the environment, prints a JSON "ready" line (with
the stored version it read and whether that token is expired), optionally waits for a line on
stdin so several processes start their calls at the same instant, then calls
`portal_api.call(MEMBER_ID, method)` and prints a JSON "done" line: outcome, error code,
how many refreshes this process sent to the OAuth server, and the version it ended with.
With `--pause-before-store`, a refresh stops right before the renewed pair is written to the
row (the OAuth server has answered; the stored refresh token is spent): the process prints a
"storing" line and sleeps, for the test to SIGKILL it there. Never prints a token.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("member_id")
    ap.add_argument("--method", default="app.info")
    ap.add_argument("--wait-for-go", action="store_true")
    ap.add_argument("--pause-before-store", action="store_true")
    args = ap.parse_args()

    from app import create_app
    from leadcard.bitrix24.rest import Deadline
    from leadcard.core import errors

    app = create_app()
    svc = app.extensions["leadcard"]
    if args.pause_before_store:
        _pause_before_store(svc.engine)
    creds = svc.store.credentials(args.member_id)
    emit({"event": "ready", "pid": os.getpid(), "seen_version": creds.version,
          "expired": creds.expired(leeway=30)})
    if args.wait_for_go:
        if not sys.stdin.readline():
            return 2
    started = time.monotonic()
    out: dict = {"event": "done", "pid": os.getpid()}
    try:
        result = svc.portal_api.call(args.member_id, args.method, {}, deadline=Deadline.after(20))
        out.update(ok=True, result_type=type(result).__name__)
    except errors.LeadCardError as exc:
        out.update(ok=False, code=exc.code)
    out["elapsed"] = round(time.monotonic() - started, 3)
    out["oauth_refresh_calls"] = svc.oauth.calls["refresh_token"]
    out["store_refresh_calls"] = svc.store.refresh_calls
    out["version_after"] = svc.store.get(args.member_id).token_version
    emit(out)
    svc.engine.dispose()
    return 0


def _pause_before_store(engine) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    @sa.event.listens_for(engine, "before_cursor_execute")
    def pause(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if statement.lstrip().startswith("UPDATE portals SET") and "refreshed_at" in statement:
            emit({"event": "storing", "pid": os.getpid()})
            time.sleep(120)  # bounded; the test kills this process long before


def emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
