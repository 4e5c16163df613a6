"""`bin/serve`: Lead Card as production runs it — nginx (TLS, slow clients) in front of gunicorn.

Renders `deploy/nginx/leadcard.conf.template` into a run directory this command owns (config,
pid file, temp directories; nothing under /etc/nginx), starts gunicorn on loopback
(`gunicorn -c gunicorn.conf.py`, HOST=127.0.0.1), waits for its /healthz, then starts nginx in
the foreground. SIGTERM or SIGINT stops both (nginx gracefully first, so no new request reaches
a stopping gunicorn); if either one dies, the other is stopped and this command exits 1.

Settings (flags override the environment):
  NGINX_LISTEN       nginx's listen address (default 443; as non-root pick a port >= 1024)
  PORT               gunicorn's port on 127.0.0.1 (default 8000)
  TLS_CERT, TLS_KEY  certificate chain and key (PEM); or --self-signed for local use
  SERVE_RUN_DIR      run directory (default instance/serve)
  NGINX_CONN_PER_ADDRESS  requests in progress per client address (default 64)
  NGINX_ACCESS_LOG   nginx's access log: a path, /dev/stdout, or off (default
                     <run dir>/access.log; nginx reopens it on SIGUSR1, for log rotation)
  NGINX              the nginx binary (default /usr/sbin/nginx)
The app's own settings (APP_URL, SECRET_KEY, ...) come from the environment as always;
PROXY_HOPS defaults to 1 here (nginx is the one proxy that writes X-Forwarded-For).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from deploy import nginx_conf, tls

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NGINX = "/usr/sbin/nginx"
STOP_TIMEOUT = 40.0  # above gunicorn's graceful timeout (30 s by default)


class ServeError(SystemExit):
    """A start-up problem, said in one line (exit status 1)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"bin/serve: {message}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ
    ap = argparse.ArgumentParser(prog="bin/serve", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", default=env.get("NGINX_LISTEN", "443"))
    ap.add_argument("--app-port", type=int, default=int(env.get("PORT", "8000")))
    ap.add_argument("--run-dir", type=Path,
                    default=Path(env.get("SERVE_RUN_DIR", "") or ROOT / "instance" / "serve"))
    ap.add_argument("--self-signed", action="store_true",
                    help="generate a self-signed certificate for APP_URL's host (local use)")
    ap.add_argument("--conn-per-address", type=int,
                    default=int(env.get("NGINX_CONN_PER_ADDRESS", "64")))
    ap.add_argument("--nginx", default=env.get("NGINX", DEFAULT_NGINX))
    return ap.parse_args(argv)


def certificate(args: argparse.Namespace) -> tuple[Path, Path]:
    """TLS_CERT/TLS_KEY, or a fresh self-signed pair in the run directory."""
    if args.self_signed:
        host = urlsplit(os.environ.get("APP_URL", "")).hostname or "localhost"
        hosts = list(dict.fromkeys([host, "localhost", "127.0.0.1"]))
        return tls.self_signed(args.run_dir / "tls", hosts)
    cert, key = os.environ.get("TLS_CERT", ""), os.environ.get("TLS_KEY", "")
    if not cert or not key:
        raise ServeError("set TLS_CERT and TLS_KEY (PEM files), or pass --self-signed")
    for name, path in (("TLS_CERT", cert), ("TLS_KEY", key)):
        if not os.path.isfile(path):
            raise ServeError(f"{name}={path} is not a readable file")
    return Path(cert).resolve(), Path(key).resolve()


def prepare(args: argparse.Namespace) -> Path:
    """Render the nginx config into the run directory and have nginx check it."""
    if not (os.path.isfile(args.nginx) and os.access(args.nginx, os.X_OK)):
        raise ServeError(f"nginx not found at {args.nginx}: install Debian's nginx "
                         "(apt-get install nginx; bin/test does) or set NGINX=<path>")
    run_dir = args.run_dir.resolve()
    cert, key = certificate(args)
    host = urlsplit(os.environ.get("APP_URL", "")).hostname or "_"
    conf = nginx_conf.write(nginx_conf.FrontConfig(
        listen=args.listen, upstream=f"127.0.0.1:{args.app_port}", tls_cert=cert, tls_key=key,
        run_dir=run_dir, server_name=host, conn_per_address=args.conn_per_address,
        access_log=os.environ.get("NGINX_ACCESS_LOG") or None))
    check = subprocess.run(nginx_command(args.nginx, conf, "-t", "-q"), capture_output=True,
                           text=True, timeout=30)
    if check.returncode != 0:
        raise ServeError(f"nginx refuses {conf}:\n{check.stderr.strip()}")
    return conf


def nginx_command(nginx: str, conf: Path, *extra: str) -> list[str]:
    # -p: relative paths (none in the template) and the default prefix stay in the run dir.
    return [nginx, "-p", f"{conf.parent}/", "-c", str(conf), *extra]


def wait_healthy(url: str, proc: subprocess.Popen, stopping: threading.Event,
                 timeout: float = 60.0) -> None:
    """Until gunicorn answers /healthz 200 (or a stop is asked for); fail if it exits first or
    takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping.is_set():
        if proc.poll() is not None:
            raise ServeError(f"gunicorn exited during start-up (status {proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310 - loopback
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        stopping.wait(0.2)
    if stopping.is_set():
        return
    raise ServeError(f"gunicorn did not answer {url} within {timeout:.0f} s")


def stop(proc: subprocess.Popen | None, sig: int, timeout: float = STOP_TIMEOUT) -> None:
    """Send `sig`, wait up to `timeout`, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    conf = prepare(args)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    env = dict(os.environ, HOST="127.0.0.1", PORT=str(args.app_port))
    # One proxy (this nginx) writes X-Forwarded-For, with the address it saw: the app's
    # per-client limits use that one, not the client's own claim.
    env.setdefault("PROXY_HOPS", "1")
    gunicorn: subprocess.Popen | None = None
    nginx: subprocess.Popen | None = None
    status = 0
    try:
        gunicorn = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
                                    cwd=ROOT, env=env, stdin=subprocess.DEVNULL)
        wait_healthy(f"http://127.0.0.1:{args.app_port}/healthz", gunicorn, stopping)
        if not stopping.is_set():
            nginx = subprocess.Popen(nginx_command(args.nginx, conf, "-g", "daemon off;"),
                                     stdin=subprocess.DEVNULL)
            print(f"bin/serve: nginx on {args.listen} (TLS) -> gunicorn on "
                  f"127.0.0.1:{args.app_port}; run directory {conf.parent}", flush=True)
        while not stopping.is_set():
            for name, proc in (("nginx", nginx), ("gunicorn", gunicorn)):
                if proc is not None and proc.poll() is not None:
                    print(f"bin/serve: {name} exited (status {proc.returncode}); stopping",
                          file=sys.stderr, flush=True)
                    status = 1
                    stopping.set()
            stopping.wait(0.2)
    finally:
        # nginx first (QUIT: finish what is in flight, accept nothing new), then gunicorn
        # (TERM: graceful, views in flight finish).
        stop(nginx, signal.SIGQUIT)
        stop(gunicorn, signal.SIGTERM)
    return status


if __name__ == "__main__":
    sys.exit(main())
