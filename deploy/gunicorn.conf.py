"""gunicorn settings for Cypher: `gunicorn -c deploy/gunicorn.conf.py wsgi:app` (or `make serve`).

Every value can be overridden with GUNICORN_* variables or on the command line. Each worker runs
create_app(): the keys file is created by exactly one of them and migrations run under a lock,
so any number of workers may start at once.
"""

import multiprocessing
import os
import shutil
import tempfile

bind = os.environ.get("CYPHER_BIND", "127.0.0.1:8000")
# OPAQUE and Argon2-free server crypto are CPU-light; the classic 2 x cores + 1 fits.
workers = int(os.environ.get("CYPHER_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
timeout = 30
graceful_timeout = 20
keepalive = 5
# Behind nginx: X-Forwarded-* are believed from here only (and Cypher's ProxyFix decides how many).
forwarded_allow_ips = os.environ.get("CYPHER_FORWARDED_ALLOW_IPS", "127.0.0.1")
# No gunicornc control socket: its default path is one per user ($HOME/.gunicorn/gunicorn.ctl), so
# a second instance on the host would take over the first one's and remove it on exit. Cypher is
# managed with signals (HUP reloads, TERM stops), as systemd sends them.
control_socket_disable = True

# Prometheus counters of every worker, summed at each scrape of /metrics (set before any worker
# imports prometheus_client). A directory made here is removed again when gunicorn exits.
_own_metrics_dir = None
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    _own_metrics_dir = tempfile.mkdtemp(prefix="cypher-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _own_metrics_dir


def post_fork(server, worker):  # type: ignore[no-untyped-def]
    """Tell the worker's Cypher how many workers serve (after -w, GUNICORN_CMD_ARGS or TTIN/TTOU):
    per-process rate-limit counters are refused in production when there are several."""
    os.environ["CYPHER_SERVING_PROCESSES"] = str(server.num_workers)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """A worker ended: its live gauges no longer count."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):  # type: ignore[no-untyped-def]
    if _own_metrics_dir is not None:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)


accesslog = "-"
errorlog = "-"
# The request line and status, never headers or bodies: tokens travel in cookies, the
# Authorization header and JSON bodies, and none of them is logged.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
