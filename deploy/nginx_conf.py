"""Renders `deploy/nginx/leadcard.conf.template` into a config nginx can run (`nginx -c`).

One template serves production and the tests; only ports, paths and certificate paths differ.
Placeholders are ``@`` + ``{name}`` (nginx's own ``$variables`` stay as they are); an unknown or
missing one is an error, never a silently half-rendered config.
"""

from __future__ import annotations

import os
import pwd
import string
from dataclasses import dataclass
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "nginx" / "leadcard.conf.template"


class _Template(string.Template):
    delimiter = "@"


@dataclass(frozen=True)
class FrontConfig:
    """What differs between one nginx front and another."""

    listen: str  # nginx `listen` address: "443", "127.0.0.1:8443"
    upstream: str  # gunicorn's loopback address, "127.0.0.1:8000"
    tls_cert: Path
    tls_key: Path
    run_dir: Path  # pid file, lock file and temp directories
    server_name: str = "_"
    conn_per_address: int = 64
    worker_processes: str = "auto"
    worker_connections: int = 4096
    access_log: str | None = None  # a path, or "off"; None: <run_dir>/access.log
    error_log: str = "stderr"
    worker_user: str | None = None  # root only; None: www-data if it exists, else nobody


def worker_user_line(worker_user: str | None) -> str:
    """The `user` directive: workers drop to an unprivileged user when nginx starts as root;
    otherwise they run as whoever started nginx and the directive is left out."""
    if os.geteuid() != 0:
        return "# not started as root: workers run as the invoking user"
    if worker_user is None:
        worker_user = "www-data"
        try:
            pwd.getpwnam(worker_user)
        except KeyError:
            worker_user = "nobody"
    return f"user {worker_user};"


def access_log_directive(cfg: FrontConfig) -> str:
    """The `access_log` arguments. A file by default: nginx opens the path itself, and
    /dev/stdout cannot be opened when stdout is a socket (systemd's journal); it works when
    stdout is a pipe or a file (containers), so it is a choice, not the default."""
    target = cfg.access_log or str(cfg.run_dir / "access.log")
    return "off" if target == "off" else f"{target} leadcard"


def render(cfg: FrontConfig, template: Path = TEMPLATE) -> str:
    """The config text for `cfg` (raises KeyError/ValueError on a bad template)."""
    return _Template(template.read_text()).substitute(
        user_line=worker_user_line(cfg.worker_user),
        worker_processes=cfg.worker_processes,
        worker_connections=str(cfg.worker_connections),
        worker_rlimit_nofile=str(2 * cfg.worker_connections + 64),
        run_dir=str(cfg.run_dir),
        error_log=cfg.error_log,
        access_log=access_log_directive(cfg),
        listen=cfg.listen,
        server_name=cfg.server_name,
        tls_cert=str(cfg.tls_cert),
        tls_key=str(cfg.tls_key),
        upstream=cfg.upstream,
        conn_per_address=str(cfg.conn_per_address),
    )


def write(cfg: FrontConfig) -> Path:
    """Render `cfg` into `<run_dir>/nginx.conf`; create the run directory and its temp dirs.

    As root, nginx's workers (an unprivileged user) own the temp directories; the run
    directory itself is made traversable (0711) so they can reach them."""
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    path = cfg.run_dir / "nginx.conf"
    path.write_text(render(cfg))
    if os.geteuid() == 0:
        os.chmod(cfg.run_dir, 0o711)  # noqa: S103 - nginx's workers (www-data) traverse it
        user = worker_user_line(cfg.worker_user).removeprefix("user ").rstrip(";")
        entry = pwd.getpwnam(user)
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            temp = cfg.run_dir / name
            temp.mkdir(mode=0o700, exist_ok=True)
            os.chown(temp, entry.pw_uid, entry.pw_gid)
    return path
