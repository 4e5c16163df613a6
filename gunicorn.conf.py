"""gunicorn settings from the environment (Procfile: `gunicorn -c gunicorn.conf.py`).

Threaded workers (gthread): a card view mostly waits on Bitrix24, so threads, not
processes, carry the concurrency (8 threads of one worker overlap 8 such waits).
"""

import os

# 0.0.0.0 by default, for a platform that routes to the container; behind the shipped nginx
# front bin/serve binds 127.0.0.1.
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104
wsgi_app = "app:create_app()"
# gunicorn's gthread worker with its closing linger moved off the event loop (see the module).
worker_class = "leadcard.web.gthread_worker.ThreadWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# Keep-alive off, and a worker holds only as many connections as it has threads: it stops
# accepting while all its threads are busy, so a new view goes to a worker with a free thread
# instead of queueing behind a whole view (~1 Bitrix24 round trip) in a busy one. gthread
# counts idle kept-alive connections against worker_connections too, so it cannot keep them
# and also accept only what it can serve now. Behind a load balancer each request then opens
# a new connection from the balancer (sub-millisecond on a LAN; the browser's own connection
# to the balancer stays kept alive), and every response says `Connection: close`, so the
# balancer never reuses a connection the worker is closing. bench/run.py, 10 s windows, 2x8,
# one machine (docs/performance.md): keep-alive 5 s with threads + 4 connections gave 73-83 %
# of ideal throughput, p95 under load 78-93 ms; keep-alive off with threads 80-88 %, 68-81 ms.
# GUNICORN_KEEPALIVE=N turns keep-alive on, and then up to 4 idle connections per worker.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "0"))
worker_connections = int(
    os.environ.get("GUNICORN_WORKER_CONNECTIONS", str(threads + (4 if keepalive else 0)))
)
# A view's own budget is 10 s (VIEW_BUDGET_SECONDS); the worker timeout sits well above it
# so a slow Bitrix24 never gets a worker killed mid-request.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "0"))
# "-" = stdout (default), a path = that file, empty = no access log (gunicorn itself would
# refuse to start on an empty path).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
# The access log line never includes the query string's secrets: Bitrix24 puts only
# DOMAIN/PROTOCOL/LANG/APP_SID in the query; tokens travel in the POST body.
# gunicorn 27's control socket is one path per user (~/.gunicorn/gunicorn.ctl): several
# servers on one machine (demo, tests, benchmark) would remove each other's. Not used here.
control_socket_disable = True
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


# How long a thread may hold the GIL before another thread that wants it gets a turn
# (CPython's default is 5 ms). A worker's threads mostly wait on Bitrix24 and then need ~4 ms
# of CPU each; when several answers arrive together, 5 ms turns make each one wait for the
# others in whole slices (the "convoy effect"), and gthread's own hand-offs between its
# poller thread and the request threads wait too. bench/run.py, one keep-alive run each
# (noisy): 5 / 1 / 0.5 ms gave 69.6 / 75.0 / 79.0 % of ideal throughput, p95 under load
# 96 / 90 / 82 ms; CPU per view did not grow.
gil_switch_interval = float(os.environ.get("GIL_SWITCH_INTERVAL_MS", "0.5")) / 1000.0


def post_fork(server, worker):  # noqa: ANN001 - gunicorn hook signature
    """Per worker process: the GIL switch interval above."""
    import sys

    sys.setswitchinterval(gil_switch_interval)


def on_starting(server):  # noqa: ANN001 - gunicorn hook signature
    """Give this master a fresh metrics directory, then apply migrations once before
    workers start (embedded default)."""
    _fresh_metrics_dir()
    from leadcard.core.config import load_settings
    from leadcard.storage import db

    settings = load_settings(instance_path=os.path.abspath("instance"))
    if settings.auto_migrate:
        engine = db.make_engine(settings.database_url)
        db.upgrade(engine)
        engine.dispose()


def _fresh_metrics_dir() -> None:
    """GET /metrics sums every worker's figures (prometheus_client's multiprocess mode): each
    worker writes its values to files under PROMETHEUS_MULTIPROC_DIR, which must be set
    before prometheus_client is imported in the worker (forked from here, so it inherits it)
    and must be empty at start — a previous run's files would be counted again. So each
    master makes its own fresh directory (two servers on one machine never share one),
    under $PROMETHEUS_MULTIPROC_PARENT or the system's temporary folder, and removes it on
    exit. Counters restart at zero with the master, which Prometheus' rate() expects."""
    import atexit
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="leadcard-metrics-",
                            dir=os.environ.get("PROMETHEUS_MULTIPROC_PARENT") or None)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    master = os.getpid()

    def remove() -> None:
        if os.getpid() == master:  # a worker also runs the atexit handlers it inherited
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)


def child_exit(server, worker):  # noqa: ANN001 - gunicorn hook signature
    """A worker ended: its live gauges go (its counters stay in the sums)."""
    from leadcard.core import metrics

    metrics.mark_process_dead(worker.pid)
