"""One process of the stored-token refresh storm (started M times in parallel by bench.run).

`python -m bench.storm_driver leadcard|baseline` loads everything first, prints READY, waits
for one line on stdin (the go signal, sent to all M processes at once), then runs the
app-level command once and prints `RESULT <exit code> <first output line>`:

- leadcard: `flask --app app portals check` (the same click command, in this process, so the
  M imports of Flask/SQLAlchemy/Authlib on 2 cores do not spread the calls over seconds);
- baseline: `bench.baseline_app.check_stored()` (CRest-style call + unlocked refresh).
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    target = argv[0] if argv else "leadcard"
    if target == "leadcard":
        from app import create_app

        app = create_app()
        runner = app.test_cli_runner()

        def run() -> tuple[int, str]:
            result = runner.invoke(args=["portals", "check"])
            text = (result.output or "").strip() or repr(result.exception)
            return result.exit_code, text
    else:
        from bench import baseline_app

        def run() -> tuple[int, str]:
            try:
                return 0, baseline_app.check_stored()
            except Exception as exc:  # report, don't crash: the storm counts failures
                return 1, f"{type(exc).__name__}: {exc}"

    print("READY", flush=True)
    sys.stdin.readline()
    code, text = run()
    first = text.splitlines()[0] if text else ""
    print(f"RESULT {code} {first}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
