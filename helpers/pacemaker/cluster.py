"""The VM's life in the Pacemaker cluster, through Pacemaker's own tools (cibadmin,
crm_resource, crm_mon --output-as=xml): never pcs or crmsh, never human-readable output.

Every change to the CIB is one atomic operation: a resource appears with its constraints
in a single merge, and disappears with them in a single delete.
"""

import shutil
import subprocess
import time

from lxml import etree

from ..core import defaults, names, xmlsafe
from ..core.errors import ClusterUnavailable, Conflict, UsageError
from ..core.settings import CephTarget
from ..core.vmschema import VmConfig

AGENT = {"class": "ocf", "provider": "rbdvm", "type": "VirtualDomain"}
NO_VMS_ATTRIBUTE = "rbdvm-no-vms"   # node attribute: `crm_attribute -N NODE -n rbdvm-no-vms -v true`
PREFERRED_SCORE = "1000"            # above the usual resource-stickiness: the VM goes back home
NOT_PLACED = "no node may run it now (standby or offline nodes, pinning, colocations)"


def _run(argv, timeout: float = 30) -> str:
    if shutil.which(argv[0]) is None:
        raise ClusterUnavailable(f"{argv[0]} is not installed", "this host is not a Pacemaker node",
                                 "Run the command on a cluster node")
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ClusterUnavailable(f"{argv[0]} did not answer within {timeout:.0f} s",
                                 "Pacemaker is starting or stuck", "Check `crm_mon -1`") from None
    if res.returncode != 0:
        raise ClusterUnavailable(f"{' '.join(argv[:2])} failed", (res.stderr or res.stdout).strip(),
                                 "Check that Pacemaker runs on this node (`crm_mon -1`)")
    return res.stdout


def cluster_status():
    """crm_mon's XML: nodes, resources (also stopped ones), failures, operation history."""
    return xmlsafe.parse(_run(["crm_mon", "--one-shot", "--output-as=xml", "--inactive", "--include=all"]),
                         "crm_mon's output", ClusterUnavailable)


def cluster_nodes(status) -> list:
    return sorted(n.get("name") for n in status.iterfind("nodes/node"))


def _resource(status, vm):
    return next((r for r in status.iter("resource") if r.get("id") == vm), None)


# ------------------------------------------------------------------ what rbdvm writes
def _nvpairs(parent, tag: str, owner: str, values: dict):
    if not values:
        return
    block_id = f"{owner}-{tag.replace('_', '-')}"
    block = etree.SubElement(parent, tag, id=block_id)
    for k, v in values.items():
        # keys are checked to be XML names (vmschema.check_map): the id extends the block's,
        # so no key can collide with the block or another block's pairs
        etree.SubElement(block, "nvpair", id=f"{block_id}-{k}", name=k, value=str(v))


def check_resource_id(vm: str) -> None:
    if not names.is_cib_id(vm):
        raise UsageError(f"VM {vm} cannot be a Pacemaker resource",
                         "its name starts with a digit, and a resource id is an XML name, "
                         "which must start with a letter",
                         "Clone it under a name that starts with a letter and enable the clone")


def primitive(vm: str, target: CephTarget, config: VmConfig, start: bool):
    """The resource of a VM, from what its system disk asks for."""
    check_resource_id(vm)
    prim = etree.Element("primitive", id=vm, **AGENT)
    params = {"vm": vm, "pool": target.pool}
    if target.namespace:
        params["namespace"] = target.namespace
    if target.conf != defaults.CEPH_CONF:
        params["ceph_conf"] = target.conf
    if target.client_id != defaults.CEPH_ID:
        params["ceph_id"] = target.client_id
    if config.migration_downtime:
        params["migration_downtime"] = str(config.migration_downtime)
    params.update(config.pacemaker_params)
    _nvpairs(prim, "instance_attributes", vm, params)
    meta = {"allow-migrate": "true" if config.live_migration else "false",
            "target-role": "Started" if start else "Stopped"}
    if config.priority:
        meta["priority"] = str(config.priority)
    meta.update(config.pacemaker_meta)
    _nvpairs(prim, "meta_attributes", vm, meta)
    ops = etree.SubElement(prim, "operations")
    timeouts = {**defaults.ACTION_TIMEOUTS, "stop": config.stop_timeout, "migrate_to": config.migrate_to_timeout}
    for name in ("monitor", "start", "stop", "migrate_to", "migrate_from"):
        interval = f"{defaults.MONITOR_INTERVAL}s" if name == "monitor" else "0s"
        etree.SubElement(ops, "op", id=f"{vm}-{name}-{interval}", name=name, interval=interval,
                         timeout=f"{timeouts[name]}s")
    _nvpairs(prim, "utilization", vm, config.pacemaker_utilization)
    return prim


def placement(vm: str, config: VmConfig):
    """The location constraint of a pinned or preferred VM, or None.

    Both shapes are one rule with the same ids, so a pin becomes a preference (and back) in
    one atomic merge of attributes."""
    pinned, preferred = config.pinned_host, config.preferred_host
    if not (pinned or preferred):
        return None
    loc = etree.Element("rsc_location", id=f"rbdvm-{vm}-placement", rsc=vm)
    rule = etree.SubElement(loc, "rule", id=f"rbdvm-{vm}-placement-rule",
                            score="-INFINITY" if pinned else PREFERRED_SCORE)
    etree.SubElement(rule, "expression", id=f"rbdvm-{vm}-placement-expr", attribute="#uname",
                     operation="ne" if pinned else "eq", value=pinned or preferred)
    return loc


def colocation_id(vm: str, other: str) -> str:
    return f"rbdvm-{vm}-colo-{other}"


def colocation(vm: str, colo: dict):
    """VM placed with (or, anti, away from) another VM: always (strong) or when possible."""
    score = ("-" if colo.get("anti") else "") + ("INFINITY" if colo.get("strong") else PREFERRED_SCORE)
    return etree.Element("rsc_colocation", id=colocation_id(vm, colo["with"]), rsc=vm,
                         **{"with-rsc": colo["with"], "score": score})


def constraints(vm: str, config: VmConfig, enabled=(), inbound=None) -> list:
    """Every constraint rbdvm makes for a VM (ids start with rbdvm-<vm>-): avoidance of
    nodes that must not run VMs, its placement, its colocations with the `enabled` VMs, and
    the colocations other enabled VMs declared with it (`inbound`: {other: colocation})."""
    avoid = etree.Element("rsc_location", id=f"rbdvm-{vm}-avoid", rsc=vm)
    rule = etree.SubElement(avoid, "rule", id=f"rbdvm-{vm}-avoid-rule", score="-INFINITY")
    etree.SubElement(rule, "expression", id=f"rbdvm-{vm}-avoid-expr", attribute=NO_VMS_ATTRIBUTE,
                     operation="eq", value="true")
    out = [avoid]
    loc = placement(vm, config)
    if loc is not None:
        out.append(loc)
    # a constraint may only name an existing resource: the others are added when they are enabled
    out += [colocation(vm, c) for c in config.colocations if c["with"] in enabled]
    out += [colocation(other, c) for other, c in (inbound or {}).items()]
    return out


# ------------------------------------------------------------------ status
def vm_status(status, vm: str, in_storage: bool) -> dict:
    """{name, status, node, reason, target} of a VM as crm_mon shows it (status None: no
    cluster). status: Undefined (not in storage), Disabled (no resource), Started, Stopped,
    Starting, Stopping, Failed."""
    out = {"name": vm, "status": "Disabled" if in_storage else "Undefined", "node": None, "reason": None,
           "target": None}
    if status is None:
        return out
    failures = [f for f in status.iterfind("failures/failure") if f.get("op_key", "").startswith(vm + "_")]
    if failures:
        f = failures[-1]
        out["reason"] = f.get("exitreason") or f"{f.get('task')} returned {f.get('exitstatus')}"
    rsc = _resource(status, vm)
    if rsc is None:
        return out
    running = [n.get("name") for n in rsc.iterfind("node")]
    out["node"] = running[0] if running else None
    stopped = rsc.get("target_role", "Started").lower() == "stopped"
    out["status"] = _state(rsc, stopped, start_failed=any(f.get("task") == "start" for f in failures))
    if out["status"] == "Stopped" and not stopped:
        # a pending start shows as role Starting: this one waits for a node it may run on
        out["reason"] = out["reason"] or NOT_PLACED
    out["target"] = "Stopped" if stopped else "Started"
    return out


def _state(rsc, stopped: bool, start_failed: bool) -> str:
    role, active = rsc.get("role"), rsc.get("active") == "true"
    # a failure Pacemaker still acts on: the resource is failed or blocked, or it cannot start
    # anywhere (a failed start bans a node until its failure is cleaned up)
    if rsc.get("failed") == "true" or rsc.get("blocked") == "true" or (start_failed and not active and not stopped):
        return "Failed"
    if role in ("Starting", "Stopping"):
        return role
    if stopped:
        return "Stopping" if active else "Stopped"
    return "Started" if active else "Stopped"


def is_enabled(status, vm: str) -> bool:
    return _resource(status, vm) is not None


def has_resource(vm: str) -> bool:
    """Whether the CIB has a resource for the VM, as the storage commands ask it: a host
    without Pacemaker's tools is not a cluster node and has none. A cluster that does not
    answer is an error, not a guess."""
    if shutil.which("cibadmin") is None:
        return False
    try:
        out = _run(["cibadmin", "--query", "--scope", "resources"], timeout=15)
    except ClusterUnavailable as exc:
        raise exc.reworded(f"cannot tell whether VM {vm} is enabled in the cluster") from None
    return bool(xmlsafe.parse(out, "the CIB's resources", ClusterUnavailable).xpath("//primitive[@id=$vm]", vm=vm))


# ------------------------------------------------------------------ changes
def add_resource(vm: str, target: CephTarget, config: VmConfig, start: bool, enabled=(), inbound=None) -> None:
    """The primitive and its constraints in one atomic merge into the CIB."""
    conf = etree.Element("configuration")
    etree.SubElement(conf, "resources").append(primitive(vm, target, config, start))
    etree.SubElement(conf, "constraints").extend(constraints(vm, config, enabled, inbound))
    _merge(conf)


def set_constraints(elements) -> None:
    """Create or update constraints (matched by id) in one atomic merge."""
    if elements:
        cons = etree.Element("constraints")
        cons.extend(elements)
        _merge(cons)


def _merge(section) -> None:
    """Merge a CIB section (elements matched by id, created if missing): one atomic update."""
    _run(["cibadmin", "--modify", "--allow-create", "--scope", section.tag,
          "--xml-text", etree.tostring(section, encoding="unicode")])


def delete_constraints(ids) -> None:
    """Delete the constraints with these ids (those that exist) in one atomic delete."""
    if ids:
        _delete(_constraints_by_id(ids))


def _constraints_by_id(ids) -> list:
    return [f"//constraints/*[@id='{i}']" for i in ids]


def _delete(xpaths) -> None:
    """Delete what the xpaths select, in one atomic CIB change."""
    _run(["cibadmin", "--delete", "--delete-all", "--force", "--xpath", " | ".join(xpaths)])


def settle(timeout: float) -> bool:
    """Wait until the cluster has carried out every action it decided; False on timeout."""
    try:
        _run(["crm_resource", "--wait", "--timeout", f"{int(timeout)}s"], timeout=timeout + 15)
    except ClusterUnavailable:
        return False
    return True


def enabled_vms(status) -> list:
    """Ids of the cluster's ocf:rbdvm:VirtualDomain resources."""
    agent = "{class}:{provider}:{type}".format(**AGENT)
    return [r.get("id") for r in status.iter("resource") if r.get("resource_agent") == agent]


def cleanup(vm: str) -> None:
    """Forget the resource's failures and operation history."""
    _run(["crm_resource", "--cleanup", "--resource", vm], timeout=60)


def move(vm: str, node: str) -> None:
    _run(["crm_resource", "--move", "--resource", vm, "--node", node])


def clear_move(vm: str) -> None:
    _run(["crm_resource", "--clear", "--resource", vm])


# in the <constraints> section cibadmin returns: every constraint that names $vm
_NAMING = ("/constraints/*[@rsc=$vm or @with-rsc=$vm or @first=$vm or @then=$vm "
           "or .//resource_ref[@id=$vm]]")


def _is_rbdvms(vm: str, cid: str) -> bool:
    """A constraint rbdvm made for the VM (or for another VM with it), or one that
    `crm_resource --move/--ban` made to move it: nothing to keep once the resource goes."""
    return (cid.startswith(f"rbdvm-{vm}-") or (cid.startswith("rbdvm-") and cid.endswith(f"-colo-{vm}"))
            or cid == f"cli-prefer-{vm}" or cid.startswith(f"cli-ban-{vm}-on-"))


def constraints_naming(vm: str) -> tuple:
    """(rbdvm's constraint ids, the others as 'tag id (attributes)') that name the VM."""
    root = xmlsafe.parse(_run(["cibadmin", "--query", "--scope", "constraints"]), "the CIB's constraints",
                         ClusterUnavailable)
    ours, others = [], []
    for c in root.xpath(_NAMING, vm=vm):
        cid = c.get("id", "")
        if _is_rbdvms(vm, cid):
            ours.append(cid)
        else:
            attrs = " ".join(f"{k}={v}" for k, v in c.attrib.items() if k != "id")
            others.append(f"{c.tag} {cid}" + (f" ({attrs})" if attrs else ""))
    return ours, others


def refuse_operators_constraints(vm: str, others=None) -> None:
    others = constraints_naming(vm)[1] if others is None else others
    if others:
        raise Conflict(f"VM {vm} is named by constraints rbdvm did not make: {'; '.join(others)}",
                       "Pacemaker cannot delete a resource that a constraint names, and rbdvm "
                       "never deletes an operator's constraint",
                       "Remove those constraints (pcs constraint delete ID), then run this again")


def remove_resource(vm: str) -> None:
    """The primitive and rbdvm's constraints naming it, in one atomic delete; refused while
    a constraint of the operator's names it."""
    ours, others = constraints_naming(vm)
    refuse_operators_constraints(vm, others)
    # its operation history first: a resource deleted with failures on record leaves them
    cleanup(vm)
    _delete([f"//resources/primitive[@id='{vm}']"] + _constraints_by_id(ours))


def set_target_role(vm: str, role: str) -> None:
    _run(["crm_resource", "--resource", vm, "--meta", "--set-parameter", "target-role",
          "--parameter-value", role])


def wait_for_status(vm: str, wanted: tuple, timeout: float, node: str | None = None) -> dict:
    """Poll crm_mon until the VM reaches one of `wanted` (on `node`, if given), fails, or
    `timeout` passes; returns the last status."""
    end = time.monotonic() + timeout
    while True:
        st = vm_status(cluster_status(), vm, True)
        reached = st["status"] in wanted and (node is None or st["node"] == node)
        if reached or st["status"] == "Failed" or time.monotonic() >= end:
            return st
        if st["reason"] == NOT_PLACED and settle(5):
            # the cluster has nothing left to do and still places it nowhere: waiting is vain
            st = vm_status(cluster_status(), vm, True)
            if st["reason"] == NOT_PLACED:
                return st
        time.sleep(0.5)
