"""What Pacemaker's own scheduler would make of a CIB: crm_simulate over a copy given on its
standard input, never the live cluster. Where each resource runs once the transition the
scheduler computes is carried out, with one node taken away (cleanly offline: fenced, or
shut down) or as the cluster stands. Parsing is pure; the call goes through the runner."""

import time

from ..core import timeouts, xmlsafe
from ..core.errors import ClusterUnavailable

ACTIVE_ROLES = ("Started", "Promoted", "Unpromoted", "Master", "Slave")


class Outcome:
    """A simulation's result: `nodes` {name: online} of the cluster members, `placed`
    {resource id: [nodes it is active on]}, `seconds` the scheduler's run."""

    def __init__(self, nodes: dict, placed: dict, seconds: float):
        self.nodes, self.placed, self.seconds = nodes, placed, seconds

    def where(self, rsc: str) -> list:
        return self.placed.get(rsc, [])


def parse(out: str, seconds: float = 0.0) -> Outcome:
    """crm_simulate --output-as=xml: the revised status (the status as given when the
    scheduler had nothing to do)."""
    root = xmlsafe.parse(out, "crm_simulate's output", ClusterUnavailable)
    status = root.find("revised_cluster_status")
    if status is None:
        status = root.find("cluster_status")
    if status is None:
        raise ClusterUnavailable("crm_simulate gave no cluster status", out[:200], code="PACEMAKER_UNAVAILABLE")
    nodes = {n.get("name"): n.get("online") == "true" for n in status.iterfind("nodes/node")
             if n.get("type", "member") == "member"}
    placed: dict = {}
    for rsc in status.iter("resource"):
        if rsc.get("active") == "true" and rsc.get("role") in ACTIVE_ROLES and rsc.get("failed") != "true":
            placed.setdefault(rsc.get("id"), []).extend(n.get("name") for n in rsc.iterfind("node"))
    return Outcome(nodes, placed, seconds)


def settled(run, cib_text: str, down: str | None = None, until: float | None = None) -> Outcome:
    """Where every resource runs once the cluster settles, `down` (a node) taken offline;
    `until`: a time.monotonic() deadline shortening the run's timeout."""
    argv = ["crm_simulate", "--xml-pipe", "--simulate", "--output-as=xml"]
    if down:
        argv += ["--node-down", down]
    t0 = time.monotonic()
    out = run(argv, timeout=timeouts.SIMULATE, until=until, stdin=cib_text)
    return parse(out, time.monotonic() - t0)
