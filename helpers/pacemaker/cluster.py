"""The VM's life in the Pacemaker cluster, through Pacemaker's own tools (cibadmin,
crm_resource, crm_mon --output-as=xml): never pcs or crmsh, never human-readable output.

Every change to the CIB is one atomic operation: a resource appears with its constraints
in a single merge, and disappears with them in a single delete. The elements come from
cib.py, the reading of crm_mon from crm_mon.py, every call goes through runner.py.
"""

import shutil
import time

from lxml import etree

from ..core import timeouts, xmlsafe
from ..core.errors import ClusterUnavailable, Conflict
from ..core.settings import CephTarget
from ..core.vmschema import VmConfig
from . import cib, crm_mon
from .runner import run as _run_tool

# in the <constraints> section cibadmin returns: every constraint that names $vm
_NAMING = ("/constraints/*[@rsc=$vm or @with-rsc=$vm or @first=$vm or @then=$vm "
           "or .//resource_ref[@id=$vm]]")


class Cluster:
    """The Pacemaker cluster as rbdvm's operations reach it: every call through `run` (the one
    runner, pacemaker/runner.py; a unit test passes a scripted one)."""

    def __init__(self, run=_run_tool, available=None):
        self.run = run
        self._available = available

    def available(self) -> bool:
        """Whether this host has Pacemaker's tools (a host without them is no cluster node)."""
        if self._available is not None:
            return self._available
        return shutil.which("cibadmin") is not None

    def cluster_status(self):
        """crm_mon's XML: nodes, resources (also stopped ones), failures, operation history."""
        return xmlsafe.parse(self.run(["crm_mon", "--one-shot", "--output-as=xml", "--inactive", "--include=all"]),
                             "crm_mon's output", ClusterUnavailable)

    def cib_text(self) -> str:
        """The whole CIB, configuration and status, as Pacemaker gives it: what crm_simulate
        is handed (simulate.py), in one query."""
        return self.run(["cibadmin", "--query"], timeout=timeouts.CIB_QUERY)

    def local_node(self) -> str:
        """This node's name in the cluster, as Pacemaker knows it (not always its host name)."""
        return self.run(["crm_node", "--name"]).strip()

    def status_text(self, vm: str) -> str | None:
        """The resource's state in Pacemaker's own words, as crm_mon prints it ("Started node1",
        "Stopped (disabled)", "FAILED node2"): what SEAPATH's cluster_vm returns. Read from
        crm_mon's text, the only place Pacemaker says it (every decision rbdvm makes reads the
        XML); None if crm_mon does not list the resource."""
        out = self.run(["crm_mon", "--one-shot", "--inactive", "--include=none,resources", f"--resource={vm}"])
        for line in out.splitlines():
            head, sep, words = line.partition("):")
            if sep and head.strip().lstrip("* ").split("\t")[0].strip() == vm:
                return " ".join(words.split())
        return None

    def has_resource(self, vm: str) -> bool:
        """Whether the CIB has a resource for the VM, as the storage commands ask it: a host
        without Pacemaker's tools is not a cluster node and has none. A cluster that does not
        answer is an error, not a guess."""
        if not self.available():
            return False
        try:
            out = self.run(["cibadmin", "--query", "--scope", "resources"], timeout=timeouts.CIB_QUERY)
        except ClusterUnavailable as exc:
            raise exc.reworded(f"cannot tell whether VM {vm} is enabled in the cluster") from None
        resources = xmlsafe.parse(out, "the CIB's resources", ClusterUnavailable)
        return bool(resources.xpath("//primitive[@id=$vm]", vm=vm))

    def add_resource(self, vm: str, target: CephTarget, config: VmConfig, start: bool, enabled=(),
                     inbound=None) -> None:
        """The primitive and its constraints in one atomic merge into the CIB, with the alert
        that records its pool's fences and lost nodes (merged by id: declared once)."""
        self._merge(cib.resource_fragment(vm, target, config, start, enabled, inbound))

    def resource(self, vm: str):
        """The VM's primitive as the CIB holds it, or None."""
        return self.primitives().get(vm)

    def primitives(self) -> dict:
        """{id: primitive} of every resource in the CIB: one query."""
        out = self.run(["cibadmin", "--query", "--scope", "resources"], timeout=timeouts.CIB_QUERY)
        return {p.get("id"): p for p in xmlsafe.parse(out, "the CIB's resources", ClusterUnavailable).iter("primitive")}

    def replace_resource(self, prim) -> None:
        """Replace the VM's primitive by `prim` (same id): one atomic CIB change, every attribute
        exactly as given (a merge would keep the pairs `prim` no longer has)."""
        self.run(["cibadmin", "--replace", "--xpath", f"//resources/primitive[@id='{prim.get('id')}']",
              "--xml-text", etree.tostring(prim, encoding="unicode")])

    def set_placement(self, vm: str, config: VmConfig) -> None:
        """The VM's placement constraint as its settings ask: created, updated, or deleted."""
        loc = cib.placement(vm, config)
        if loc is None:
            self.delete_constraints([cib.placement_id(vm)])
        elif cib.placement_id(vm) in self.constraints_naming(vm)[0]:
            # replaced whole, in one change: a merge would keep the rules of hosts no longer listed
            self.run(["cibadmin", "--replace", "--xpath", f"//constraints/rsc_location[@id='{cib.placement_id(vm)}']",
                      "--xml-text", etree.tostring(loc, encoding="unicode")])
        else:
            self.set_constraints([loc])

    def set_constraints(self, elements) -> None:
        """Create or update constraints (matched by id) in one atomic merge."""
        if elements:
            cons = etree.Element("constraints")
            cons.extend(elements)
            self._merge(cons)

    def _merge(self, section) -> None:
        """Merge a CIB section (elements matched by id, created if missing): one atomic update."""
        self.run(["cibadmin", "--modify", "--allow-create", "--scope", section.tag,
              "--xml-text", etree.tostring(section, encoding="unicode")])

    def delete_constraints(self, ids) -> None:
        """Delete the constraints with these ids (those that exist) in one atomic delete."""
        if ids:
            self._delete(self._constraints_by_id(ids))

    def _constraints_by_id(self, ids) -> list:
        return [f"//constraints/*[@id='{i}']" for i in ids]

    def _delete(self, xpaths) -> None:
        """Delete what the xpaths select, in one atomic CIB change."""
        self.run(["cibadmin", "--delete", "--delete-all", "--force", "--xpath", " | ".join(xpaths)])

    def settle(self, timeout: float) -> bool:
        """Wait until the cluster has carried out every action it decided; False on timeout."""
        try:
            self.run(["crm_resource", "--wait", "--timeout", f"{int(timeout)}s"], timeout=timeout + 15)
        except ClusterUnavailable:
            return False
        return True

    def cleanup(self, vm: str) -> None:
        """Forget the resource's failures and operation history."""
        self.run(["crm_resource", "--cleanup", "--resource", vm], timeout=timeouts.CLEANUP)

    def move(self, vm: str, node: str) -> None:
        self.run(["crm_resource", "--move", "--resource", vm, "--node", node])

    def clear_move(self, vm: str) -> None:
        self.run(["crm_resource", "--clear", "--resource", vm])

    def constraints_naming(self, vm: str) -> tuple:
        """(rbdvm's constraint ids, the others as 'tag id (attributes)') that name the VM."""
        root = xmlsafe.parse(self.run(["cibadmin", "--query", "--scope", "constraints"]), "the CIB's constraints",
                             ClusterUnavailable)
        ours, others = [], []
        for c in root.xpath(_NAMING, vm=vm):
            cid = c.get("id", "")
            if cib.is_rbdvms(vm, cid):
                ours.append(cid)
            else:
                attrs = " ".join(f"{k}={v}" for k, v in c.attrib.items() if k != "id")
                others.append(f"{c.tag} {cid}" + (f" ({attrs})" if attrs else ""))
        return ours, others

    def refuse_operators_constraints(self, vm: str, others=None) -> None:
        others = self.constraints_naming(vm)[1] if others is None else others
        if others:
            raise Conflict(f"VM {vm} is named by constraints rbdvm did not make: {'; '.join(others)}",
                           "Pacemaker cannot delete a resource that a constraint names, and rbdvm "
                           "never deletes an operator's constraint",
                           "Remove those constraints (pcs constraint delete ID), then run this again")

    def remove_resource(self, vm: str) -> None:
        """The primitive and rbdvm's constraints naming it, in one atomic delete; refused while
        a constraint of the operator's names it."""
        ours, others = self.constraints_naming(vm)
        self.refuse_operators_constraints(vm, others)
        # its operation history first: a resource deleted with failures on record leaves them
        self.cleanup(vm)
        self._delete([f"//resources/primitive[@id='{vm}']"] + self._constraints_by_id(ours))

    def set_target_role(self, vm: str, role: str) -> None:
        self.set_meta(vm, "target-role", role)

    def set_meta(self, vm: str, name: str, value: str) -> None:
        self.run(["crm_resource", "--resource", vm, "--meta", "--set-parameter", name, "--parameter-value", value])

    def wait_for_status(self, vm: str, wanted: tuple, timeout: float, node: str | None = None) -> dict:
        """Poll crm_mon until the VM reaches one of `wanted` (on `node`, if given), fails, or
        `timeout` passes; returns the last status."""
        end = time.monotonic() + timeout
        while True:
            st = crm_mon.vm_status(self.cluster_status(), vm, True)
            reached = st["status"] in wanted and (node is None or st["node"] == node)
            if reached or st["status"] == "Failed" or time.monotonic() >= end:
                return st
            if st["reason"] == crm_mon.NOT_PLACED and self.settle(5):
                # the cluster has nothing left to do and still places it nowhere: waiting is vain
                st = crm_mon.vm_status(self.cluster_status(), vm, True)
                if st["reason"] == crm_mon.NOT_PLACED:
                    return st
            time.sleep(0.5)

    def cib_nodes(self):
        """The CIB's nodes section: node attributes and utilization."""
        out = self.run(["cibadmin", "--query", "--scope", "nodes"], timeout=timeouts.CIB_QUERY)
        return xmlsafe.parse(out, "the CIB's nodes", ClusterUnavailable)

    def cluster_option(self, name: str) -> str | None:
        """A cluster option (crm_config), None when it is not set."""
        out = self.run(["cibadmin", "--query", "--scope", "crm_config"], timeout=timeouts.CIB_QUERY)
        return cib.cluster_property(xmlsafe.parse(out, "the CIB's cluster options", ClusterUnavailable), name)

    def set_cluster_option(self, name: str, value: str) -> None:
        """Set a cluster option (crm_config): one CIB change."""
        self.run(["crm_attribute", "--type", "crm_config", "--name", name, "--update", value])

    def set_drained(self, node: str, drained: bool) -> None:
        """Set (or delete) the node's permanent rbdvm-no-vms attribute: one CIB change."""
        if drained:
            self.run(["crm_attribute", "--type", "nodes", "--node", node, "--name", cib.NO_VMS_ATTRIBUTE,
                      "--update", "true"])
        else:
            self.run(["crm_attribute", "--type", "nodes", "--node", node, "--name", cib.NO_VMS_ATTRIBUTE,
                      "--delete"])
