"""What rbdvm writes into the CIB for a VM: its primitive and its constraints, built from the
VM's typed record (vmschema.VmConfig). Pure: builds elements, runs nothing."""

import copy
import re

from lxml import etree

from ..core import defaults, names, timeouts, vmschema
from ..core.errors import UsageError
from ..core.settings import CephTarget
from ..core.vmschema import REMOTE_META, VmConfig

AGENT = {"class": "ocf", "provider": "rbdvm", "type": "VirtualDomain"}

NO_VMS_ATTRIBUTE = "rbdvm-no-vms"   # node attribute: `crm_attribute -N NODE -n rbdvm-no-vms -v true`

PREFERRED_SCORE = "1000"            # above the usual resource-stickiness: the VM goes back home


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
                         "Clone it under a name that starts with a letter and enable the clone",
                         code="INVALID_NAME", details={"name": vm})


_BLOCKS = ("instance_attributes", "meta_attributes", "utilization")


def setting_pairs(config: VmConfig) -> dict:
    """{block: {name: value}}: the attributes of a VM's resource that its settings decide
    (the one place that maps settings to the resource)."""
    params = {}
    if config.migration_downtime:
        params["migration_downtime"] = str(config.migration_downtime)
    params.update(config.pacemaker_params)
    meta = {"allow-migrate": "true" if config.live_migration else "false"}
    if config.priority:
        meta["priority"] = str(config.priority)
    meta.update(config.pacemaker_meta)
    if config.remote_node:
        # a guest node: Pacemaker starts a connection to the guest's pacemaker_remoted with the VM
        for name, attribute in REMOTE_META.items():
            value = getattr(config, name)
            if value:
                meta[attribute] = f"{value}s" if name == "remote_connect_timeout" else str(value)
    return {"instance_attributes": params, "meta_attributes": meta, "utilization": dict(config.pacemaker_utilization)}


def setting_timeouts(config: VmConfig) -> dict:
    """The operation timeouts a VM's settings decide."""
    return {"stop": config.stop_timeout, "migrate_to": config.migrate_to_timeout}


def _op_id(vm: str, name: str, interval: str) -> str:
    return f"{vm}-{name}-{interval}"


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
    decided = setting_pairs(config)
    _nvpairs(prim, "instance_attributes", vm, params | decided["instance_attributes"])
    _nvpairs(prim, "meta_attributes", vm,
             {"target-role": "Started" if start else "Stopped"} | decided["meta_attributes"])
    ops = etree.SubElement(prim, "operations")
    op_timeouts = {**timeouts.ACTION_TIMEOUTS, **setting_timeouts(config)}
    for name in ("monitor", "start", "stop", "migrate_to", "migrate_from"):
        interval = f"{timeouts.MONITOR_INTERVAL}s" if name == "monitor" else "0s"
        etree.SubElement(ops, "op", id=_op_id(vm, name, interval), name=name, interval=interval,
                         timeout=f"{op_timeouts[name]}s")
    _nvpairs(prim, "utilization", vm, decided["utilization"])
    return prim


def history_alert(target: CephTarget):
    """The alert that has Pacemaker report fences and lost nodes to rbdvm's alert agent, which
    records them in the event history of `target`'s pool. One per pool (its id names it), so
    VMs of several pools each have their nodes' events."""
    # the pool's name, if it can extend an XML id as it is
    pool_id = target.pool if re.fullmatch(r"[A-Za-z0-9_.-]+", target.pool) else target.pool.encode().hex()
    aid = f"rbdvm-history-{pool_id}"
    alert = etree.Element("alert", id=aid, path=defaults.ALERT_AGENT,
                          description="rbdvm: fences and lost nodes into the event history (rbdvm events)")
    _nvpairs(alert, "meta_attributes", aid, {"timeout": f"{timeouts.ALERT_TIMEOUT}s"})
    params = {"rbdvm_pool": target.pool}
    if target.conf != defaults.CEPH_CONF:
        params["rbdvm_ceph_conf"] = target.conf
    _nvpairs(alert, "instance_attributes", aid, params)
    select = etree.SubElement(alert, "select")
    etree.SubElement(select, "select_nodes")
    etree.SubElement(select, "select_fencing")
    return alert


def patched(current, before: VmConfig, after: VmConfig):
    """The CIB's primitive `current` changed as the VM's settings changed from `before` to
    `after`: attributes the settings no longer decide removed, those they decide set where
    the CIB differs, the operation timeouts they decide set. Everything else (what pcs, an
    operator or the agent itself set: its measured utilization) stays as it is."""
    vm = current.get("id")
    out = copy.deepcopy(current)
    old, new = setting_pairs(before), setting_pairs(after)
    for tag in _BLOCKS:
        block = out.find(tag)
        if block is None:
            if not new[tag]:
                continue
            block = etree.SubElement(out, tag, id=f"{vm}-{tag.replace('_', '-')}")
        have = {nv.get("name"): nv for nv in block.findall("nvpair")}
        for name in old[tag].keys() - new[tag].keys():
            if name in have:
                block.remove(have[name])
        for name, value in new[tag].items():
            if name in have:
                have[name].set("value", value)
            else:
                etree.SubElement(block, "nvpair", id=f"{block.get('id')}-{name}", name=name, value=value)
    ops = out.find("operations")
    if ops is None:
        ops = etree.SubElement(out, "operations")
    for name, seconds in setting_timeouts(after).items():
        found = ops.findall(f"op[@name='{name}']")
        for op in found:
            op.set("timeout", f"{seconds}s")
        if not found:
            etree.SubElement(ops, "op", id=_op_id(vm, name, "0s"), name=name, interval="0s", timeout=f"{seconds}s")
    return out


def pairs(element, tag: str) -> dict:
    """{name: value} of the nvpairs in `element`'s block `tag` (instance_attributes, ...)."""
    return {nv.get("name"): nv.get("value") for nv in element.findall(f"{tag}/nvpair")}


def restart_needed(old, new) -> bool:
    """Whether replacing primitive `old` by `new` makes Pacemaker restart a running resource:
    its agent's parameters (instance attributes) differ. Meta attributes, operation timeouts
    and utilization change without a restart."""
    return pairs(old, "instance_attributes") != pairs(new, "instance_attributes")


def params(prim) -> dict:
    """The agent parameters of a primitive."""
    return pairs(prim, "instance_attributes")


def ceph_target(prim) -> CephTarget | None:
    """Where the VM of an rbdvm primitive is stored (what primitive() wrote, read back);
    None for another agent's resource or one run from a local file (config=)."""
    if any(prim.get(k) != v for k, v in AGENT.items()):
        return None
    p = params(prim)
    if not p.get("vm"):
        return None
    return CephTarget(conf=p.get("ceph_conf") or defaults.CEPH_CONF, client_id=p.get("ceph_id") or defaults.CEPH_ID,
                      pool=p.get("pool") or defaults.POOL, namespace=p.get("namespace") or "")


def placement(vm: str, config: VmConfig):
    """The location constraint of a pinned or preferred VM, or None: one constraint (one id,
    replaced whole when it changes). A pin is one rule (-INFINITY off the node); preferred
    hosts are one rule per node, scored PREFERRED_SCORE times the node's weight, so the VM
    runs on the highest-weighted node that is up and goes back when it returns."""
    pinned, preferred = config.pinned_host, config.preferred_host
    if not (pinned or preferred):
        return None
    loc = etree.Element("rsc_location", id=placement_id(vm), rsc=vm)
    rules = [(pinned, "-INFINITY", "ne")] if pinned else \
        [(node, str(int(PREFERRED_SCORE) * weight), "eq") for node, weight in vmschema.preferred_hosts(preferred or "")]
    for i, (node, score, op) in enumerate(rules):
        suffix = f"-{i + 1}" if i else ""     # the first keeps the ids of a single host
        rule = etree.SubElement(loc, "rule", id=f"rbdvm-{vm}-placement-rule{suffix}", score=score)
        etree.SubElement(rule, "expression", id=f"rbdvm-{vm}-placement-expr{suffix}", attribute="#uname",
                         operation=op, value=node)
    return loc


def placement_id(vm: str) -> str:
    return f"rbdvm-{vm}-placement"


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


def is_rbdvms(vm: str, cid: str) -> bool:
    """A constraint rbdvm made for the VM (or for another VM with it), or one that
    `crm_resource --move/--ban` made to move it: nothing to keep once the resource goes."""
    return (cid.startswith(f"rbdvm-{vm}-") or (cid.startswith("rbdvm-") and cid.endswith(f"-colo-{vm}"))
            or cid == f"cli-prefer-{vm}" or cid.startswith(f"cli-ban-{vm}-on-"))


def numbers(pairs: dict) -> dict:
    """The whole-number values of a block's pairs (utilization: what the scheduler counts)."""
    out = {}
    for k, v in pairs.items():
        try:
            out[k] = int(v)
        except (TypeError, ValueError):
            continue
    return out


def vm_primitives(root) -> dict:
    """{id: primitive} of rbdvm's VMs in a whole CIB (not another agent's resources)."""
    return {p.get("id"): p for p in root.iterfind("configuration/resources//primitive") if ceph_target(p) is not None}


def utilizations(root) -> tuple:
    """({node: {attribute: capacity}}, {resource: {attribute: use}}) of a whole CIB."""
    nodes = {n.get("uname"): numbers(pairs(n, "utilization")) for n in root.iterfind("configuration/nodes/node")}
    rscs = {p.get("id"): numbers(pairs(p, "utilization")) for p in root.iterfind("configuration/resources//primitive")}
    return nodes, rscs


def cluster_property(root, name: str) -> str | None:
    """A cluster property of a whole CIB or of its crm_config section, or None when it is
    not set."""
    found = root.xpath("(configuration/crm_config | self::crm_config)/cluster_property_set/nvpair[@name=$n]/@value",
                       n=name)
    return str(found[0]) if found else None


def wanted(prim) -> bool:
    """Whether the resource is meant to run (its target-role is not Stopped)."""
    return pairs(prim, "meta_attributes").get("target-role", "Started") != "Stopped"


def priority(prim) -> int:
    try:
        return int(pairs(prim, "meta_attributes").get("priority", "0"))
    except ValueError:
        return 0


def resource_fragment(vm: str, target: CephTarget, config: VmConfig, start: bool, enabled=(), inbound=None,
                      utilization=None):
    """The <configuration> a VM's enable merges into the CIB: its primitive, its constraints
    and its pool's history alert. `utilization`: values the agent will set at the start,
    added where the settings set none (what a what-if needs before the VM ever ran)."""
    conf = etree.Element("configuration")
    prim = primitive(vm, target, config, start)
    if utilization:
        extra = {k: v for k, v in utilization.items() if k not in config.pacemaker_utilization}
        block = prim.find("utilization")
        if block is None and extra:
            block = etree.SubElement(prim, "utilization", id=f"{vm}-utilization")
        for k, v in extra.items():
            etree.SubElement(block, "nvpair", id=f"{vm}-utilization-{k}", name=k, value=str(v))
    etree.SubElement(conf, "resources").append(prim)
    etree.SubElement(conf, "constraints").extend(constraints(vm, config, enabled, inbound))
    etree.SubElement(conf, "alerts").append(history_alert(target))
    return conf


def with_configuration(whole, fragment, without=()) -> tuple:
    """(parsed, text) of a copy of a whole CIB (parsed) as a change would leave it: each
    child of the <configuration> `fragment` put under its section, in place of the element
    of its id if there is one (a change rbdvm makes replaces or merges whole elements), and
    the elements of the ids `without` taken out."""
    out = copy.deepcopy(whole)
    conf = out.find("configuration")
    gone = set(without)
    for section in conf:
        for el in [e for e in section if e.get("id") in gone]:
            section.remove(el)
    for section in fragment:
        into = conf.find(section.tag)
        if into is None:
            into = etree.SubElement(conf, section.tag)
        have = {e.get("id"): e for e in into}
        for el in section:
            if el.get("id") in have:
                into.replace(have[el.get("id")], copy.deepcopy(el))
            else:
                into.append(copy.deepcopy(el))
    return out, etree.tostring(out, encoding="unicode")


def moved_to(vm: str, node: str):
    """The <configuration> a move of `vm` to `node` leaves while it runs: the location
    constraint `crm_resource --move` makes (what a what-if of the move merges)."""
    conf = etree.Element("configuration")
    etree.SubElement(etree.SubElement(conf, "constraints"), "rsc_location", id=f"cli-prefer-{vm}", rsc=vm,
                     role="Started", node=node, score="INFINITY")
    return conf


def settings_fragment(vm: str, prim, config: VmConfig) -> tuple:
    """(<configuration> fragment, ids to take out) that a `set` of an enabled VM leaves:
    its patched primitive, and its placement constraint as the settings ask (or none)."""
    conf = etree.Element("configuration")
    etree.SubElement(conf, "resources").append(copy.deepcopy(prim))
    loc = placement(vm, config)
    if loc is None:
        return conf, (placement_id(vm),)
    etree.SubElement(conf, "constraints").append(loc)
    return conf, ()
