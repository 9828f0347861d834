"""rbdvm exporter: the metrics of helpers/ops/metrics for Prometheus, over HTTP or into
node_exporter's textfile collector."""

import http.server
import os
import sys
import threading
import time

import click

from rbdvm.helpers.core import defaults, promtext, timeouts
from rbdvm.helpers.core import monitoring as monitoring_data
from rbdvm.helpers.core.errors import UsageError
from rbdvm.helpers.ops import metrics

from .options import ceph_command, cluster_env

TEXTFILE = "rbdvm.prom"


def _address(listen: str) -> tuple:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {listen!r} is not HOST:PORT", "for example 127.0.0.1:9775 or [::]:9775")
    return host.strip("[]") or "0.0.0.0", int(port)


class _Latest:
    """The last collection's text, replaced whole by the collecting thread."""

    def __init__(self):
        self.text = ""
        self.ready = threading.Event()

    def set(self, text: str) -> None:
        self.text = text
        self.ready.set()


def _collector(target, latest: _Latest, interval: float, textfile: str | None):
    def loop():
        while True:
            began = time.monotonic()
            text = metrics.collect(cluster_env(), target)
            latest.set(text)
            if textfile:
                _write_textfile(textfile, text)
            time.sleep(max(0.0, interval - (time.monotonic() - began)))
    return threading.Thread(target=loop, name="collect", daemon=True)


def _write_textfile(directory: str, text: str) -> None:
    """Renamed into place whole: node_exporter never reads half a file."""
    path = os.path.join(directory, TEXTFILE)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _handler(latest: _Latest):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.split("?", 1)[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            if self.path.startswith("/metrics"):
                latest.ready.wait(timeouts.EXPORTER_COLLECT + 5)
                body, kind = latest.text.encode(), promtext.CONTENT_TYPE
            else:
                body, kind = b"rbdvm exporter: the metrics are at /metrics\n", "text/plain; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass     # a scrape every few seconds is no news

    return Handler


@click.command()
@click.option("--listen", default=defaults.EXPORTER_LISTEN, show_default=True, metavar="HOST:PORT",
              help="Where to serve /metrics (this node only by default; [::]:9775 for every address).")
@click.option("--textfile", metavar="DIR", default=None,
              help="Write DIR/rbdvm.prom for node_exporter's textfile collector instead of serving HTTP.")
@click.option("--interval", default=15.0, show_default=True, metavar="SECONDS",
              help="Seconds between two collections (a scrape gets the latest one at once).")
@click.option("--once", is_flag=True, help="Collect once, print the metrics and exit.")
@ceph_command
def exporter(listen, textfile, interval, once, target, as_json):
    """Serve rbdvm's metrics to Prometheus: per VM (state wanted and actual, node, failures,
    trust, storage, snapshots, last backup, last migration's downtime, last failover and its
    phases, failover and migration counts) and per node (online, drained, fenced, the fence
    self-check's last sign of life).

    \b
    The metrics are collected in the background every --interval seconds, each source
    (Pacemaker, Ceph, the event history) within a deadline: one that does not answer is
    marked rbdvm_up{source="..."} 0 and its metrics are left out, never served stale.
    rbdvm_collect_timestamp_seconds says when the served values were read.
    Run it on every node (the package's rbdvm-exporter.service does).
    """
    if once:
        sys.stdout.write(metrics.collect(cluster_env(), target))
        return
    latest = _Latest()
    if textfile:
        if not os.path.isdir(textfile):
            raise UsageError(f"--textfile {textfile}: no such directory")
        _collector(target, latest, interval, textfile).run()
        return
    server = http.server.ThreadingHTTPServer(_address(listen), _handler(latest))
    server.daemon_threads = True
    _collector(target, latest, interval, None).start()
    click.echo(f"rbdvm exporter: serving http://{listen}/metrics, collecting every {interval:g} s", err=True)
    server.serve_forever()


@click.group()
def monitoring():
    """What rbdvm ships for Prometheus and Grafana (the Debian package installs both in
    /usr/share/rbdvm/monitoring/)."""


@monitoring.command()
def rules():
    """Print Prometheus' alerting rules for rbdvm's metrics: a VM wanted but not running, a
    node fenced or its self-check silent, a VM untrusted, a backup too old, storage
    degraded, a slow failover, an exporter that cannot read a source."""
    sys.stdout.write(monitoring_data.rules_yaml())


@monitoring.command()
def dashboard():
    """Print the Grafana dashboard (JSON model to import): VMs per node, failovers and
    migrations, the last failover's phases, migration downtime, backup age."""
    sys.stdout.write(monitoring_data.dashboard_json())
