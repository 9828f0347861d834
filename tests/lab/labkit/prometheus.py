"""A real Prometheus (Debian's) in the observer's namespaces, scraping `rbdvm exporter` on
every lab node every second, with rbdvm's alerting rules loaded: what a site runs, with its
intervals shortened so a test sees a change within seconds."""

import json
import shutil

from . import layout as L
from . import node
from .procs import LabError, wait_for

HOST = L.OBSERVER
PORT = 9090
EXPORTER_PORT = 9775
INTERVAL = 1


def url() -> str:
    return f"http://{L.IP[HOST]}:{PORT}"


def _dir():
    return L.STATE / "prometheus"


def start() -> None:
    """Exporters on every node (collecting every second), then Prometheus on the observer."""
    from rbdvm.helpers.core import monitoring

    for n in L.NODES:
        node._spawn_in(n, f"exporter-{n}", [str(L.VENV / "bin" / "rbdvm"), "exporter", "--listen",
                                            f"{L.IP[n]}:{EXPORTER_PORT}", "--interval", str(INTERVAL)])
    d = _dir()
    shutil.rmtree(d, ignore_errors=True)
    (d / "data").mkdir(parents=True)
    (d / "rbdvm-alerts.yml").write_text(monitoring.rules_yaml())
    targets = [f"{L.IP[n]}:{EXPORTER_PORT}" for n in L.NODES]
    # Prometheus reads YAML, of which JSON is a part
    (d / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": f"{INTERVAL}s", "evaluation_interval": f"{INTERVAL}s"},
        "rule_files": [str(d / "rbdvm-alerts.yml")],
        "scrape_configs": [{"job_name": "rbdvm", "static_configs": [{"targets": targets}]}]}))
    node._spawn_in(HOST, "prometheus-lab", ["/usr/bin/prometheus", f"--config.file={d / 'prometheus.yml'}",
                                             f"--storage.tsdb.path={d / 'data'}",
                                             f"--web.listen-address={L.IP[HOST]}:{PORT}"])
    def scraped():
        try:
            return len(query('up{job="rbdvm"} == 1')) == len(L.NODES)
        except LabError:
            return False      # not listening yet
    if not wait_for(30, scraped, 0.5):
        raise LabError("Prometheus did not scrape every exporter")


def stop() -> None:
    node.REG.stop(["prometheus-lab", *(f"exporter-{n}" for n in L.NODES)], 10)


def query(expr: str) -> list:
    """[(labels, value)] of an instant query, asked from the observer (where Prometheus is)."""
    res = node.sh(HOST, ["promtool", "query", "instant", "--format=json", url(), expr], check=False)
    if res.returncode != 0:
        raise LabError(f"Prometheus refused the query {expr}: {res.stderr.strip()}")
    return [(r["metric"], float(r["value"][1])) for r in json.loads(res.stdout or "[]")]


def value(expr: str) -> float | None:
    found = query(expr)
    return found[0][1] if found else None


def firing(alert: str, **labels) -> bool:
    match = ",".join([f'alertname="{alert}"', 'alertstate="firing"'] + [f'{k}="{v}"' for k, v in labels.items()])
    return bool(query(f"ALERTS{{{match}}}"))
