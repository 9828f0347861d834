"""fence_rbdvm: storage fencing for Ceph, for sites without a power switch.

A node is fenced by cutting it off the shared storage: `off` adds each of the node's
addresses to the OSD blocklist as a whole (`IP:0/0`: every Ceph client of that host, its
QEMUs included, is refused by the OSDs from then on). Before that it marks down the OSDs of
the node's CRUSH host that do not answer (Ceph-aware failover: helpers/ceph/fencedosds.py),
since the fence lock's object may live on one of them; `on` (unfencing, run by Pacemaker on
the node itself before it may run resources) removes those entries; `status` says off while
they are all there. The node's self-check (`fence_rbdvm_check`) ends the QEMUs of a host
that finds itself cut off, so a fenced but running node does not keep a VM's network side
alive.

Fence-agent conventions: options as key=value lines on stdin (pacemaker-fenced) or on the
command line (`-o ACTION -n NODE`); exit 0 on success, 1 on failure; `status` exits 0 (on)
or 2 (off); `metadata` prints the XML derived from OPTIONS and ACTIONS below.

A fencer first takes the fence lock (helpers/ceph/fencing.py): a host already fenced is
refused by the OSDs there, so two nodes fencing each other at once leave exactly one fenced.
`reboot` is `off`: storage fencing cannot power-cycle, and an automatic `on` right after
would undo the fence (set pcmk_reboot_action=off on the device).
"""

import sys
import time
from dataclasses import dataclass

from rbdvm.helpers.core import defaults, hostnames, timeouts


@dataclass(frozen=True)
class Option:
    name: str
    flags: tuple          # command-line spellings; the first long one is shown in metadata
    default: str
    short: str
    aliases: tuple = ()   # older names fenced may pass (shown as deprecated)


OPTIONS = (
    Option("action", ("-o", "--action"), "off", "Fencing action"),
    Option("plug", ("-n", "--plug"), "", "The node to act on (its name in the cluster)",
           aliases=("port", "nodename")),
    Option("ceph_conf", ("--ceph-conf",), defaults.CEPH_CONF, "Ceph configuration file"),
    Option("ceph_id", ("--ceph-id",), defaults.FENCE_CEPH_ID,
           "Ceph user (without 'client.'): needs mon 'allow r, allow command \"osd blocklist\", "
           "allow command \"osd down\"' and "
           "osd 'allow rwx pool=POOL object_prefix rbdvm.fence'"),
    Option("pool", ("--pool",), defaults.POOL, "Pool holding the fence lock (the VMs' pool)"),
    Option("node_addresses", ("--node-addresses",), "",
           "node=addr[,addr...][;node=...]: the nodes' addresses as Ceph sees them "
           "(default: the ring addresses of corosync's node list)"),
)
# action -> what it does (its man page's words)
ACTIONS = {
    "on": "unfence: remove the node's addresses from the blocklist (Pacemaker runs it on the node itself)",
    "off": "fence: mark down the node's silent OSDs, then blocklist every client of its addresses",
    "reboot": "the same as off: storage fencing cannot power-cycle a node",
    "status": "exit 0 if the node is on (not blocklisted), 2 if it is off",
    "list": "print the nodes this device can fence, with their addresses",
    "monitor": "check that Ceph answers with this device's user",
    "metadata": "print the XML description of the agent",
    "validate-all": "check the options without acting",
}
EXIT_ON, EXIT_ERROR, EXIT_OFF = 0, 1, 2
_BY_FLAG = {flag: o.name for o in OPTIONS for flag in o.flags}
_BY_KEY = {key: o.name for o in OPTIONS for key in (o.name, *o.aliases)}


def parse(argv, stdin_text: str) -> dict:
    """Options from the command line, else from stdin's key=value lines."""
    opts = {o.name: o.default for o in OPTIONS}
    if argv:
        it = iter(argv)
        for arg in it:
            flag, eq, value = arg.partition("=")
            if flag not in _BY_FLAG:
                raise ValueError(f"unknown option {arg}")
            opts[_BY_FLAG[flag]] = value if eq else next(it, "")
        return opts
    for line in stdin_text.splitlines():
        key, eq, value = line.strip().partition("=")
        if eq and key.strip() in _BY_KEY and not key.startswith("#"):
            opts[_BY_KEY[key.strip()]] = value.strip()
    return opts


def node_addresses(opts: dict, corosync_conf: str = hostnames.COROSYNC_CONF) -> dict:
    """{node: [address, ...]}: the node_addresses option, else corosync's node list."""
    out: dict = {}
    if opts.get("node_addresses"):
        for item in opts["node_addresses"].split(";"):
            node, _, addrs = item.partition("=")
            if node.strip() and addrs.strip():
                out[node.strip()] = [a.strip() for a in addrs.split(",") if a.strip()]
        return out
    for addr, node in hostnames.cluster_addresses(corosync_conf).items():
        out.setdefault(node, []).append(addr)
    return out


def entries_of(addresses) -> list:
    """The blocklist entries that fence a host: every client from each address."""
    return [f"{a}:0/0" for a in addresses]


def metadata_xml() -> str:
    from lxml import etree

    root = etree.Element("resource-agent", name="fence_rbdvm",
                         shortdesc="Fences a node off Ceph: blocklists every client of its addresses")
    etree.SubElement(root, "longdesc").text = (
        "Storage fencing for Ceph RBD, for sites without a power switch. off adds the node's "
        "addresses to the OSD blocklist, so no client of that node (its QEMUs included) can read "
        "or write any more; on (unfencing) removes them when the node rejoins. A node already "
        "fenced cannot fence another. Run fence_rbdvm_check on every node so that a fenced node "
        "also stops its VMs. Use with pcmk_reboot_action=off and meta provides=unfencing.")
    etree.SubElement(root, "vendor-url").text = "https://docs.ceph.com/en/latest/rados/operations/"
    params = etree.SubElement(root, "parameters")
    for o in OPTIONS:
        for name in (o.name, *o.aliases):
            attrs = {"name": name, "unique": "0", "required": "0"}
            if name != o.name:
                attrs["deprecated"] = "1"
            elif o.aliases:
                attrs["obsoletes"] = o.aliases[0]
            p = etree.SubElement(params, "parameter", **attrs)
            flag = next((f for f in o.flags if f.startswith("--")), o.flags[0])
            shown = ", ".join(f for f in o.flags if not f.startswith("--"))
            etree.SubElement(p, "getopt", mixed=(shown + ", " if shown else "") + f"{flag}=[value]")
            etree.SubElement(p, "content", type="string", default=o.default)
            etree.SubElement(p, "shortdesc", lang="en").text = o.short
    actions = etree.SubElement(root, "actions")
    for a in ACTIONS:
        # unfencing: Pacemaker runs `on` on the node itself before it may start resources
        attrs = {"name": a, "on_target": "1", "automatic": "1"} if a == "on" else {"name": a}
        etree.SubElement(actions, "action", **attrs)
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8").decode()


def run(opts: dict, say) -> int:
    """One action; raises RbdvmError or LookupError on failure."""
    from rbdvm.helpers.ceph import blocklist, fencing
    from rbdvm.helpers.ceph.session import Session
    from rbdvm.helpers.core.settings import CephTarget

    action, plug = opts["action"], opts["plug"]
    known = node_addresses(opts)
    if action == "list":
        for name in sorted(known):
            say(f"{name},", out=True)
        return 0
    if action not in ("monitor", "validate-all") and plug not in known:
        raise LookupError(f"no address known for node {plug!r} (known: {', '.join(sorted(known)) or 'none'}); "
                          "set node_addresses or check corosync's node list")
    if action == "validate-all":
        return 0
    target = CephTarget(conf=opts["ceph_conf"], client_id=opts["ceph_id"], pool=opts["pool"])
    with Session(target, timeouts.OSD_OP_FENCE_AGENT) as session:
        listed = set(blocklist.entries(session))   # also proves the monitor capabilities
        if action == "monitor":
            return 0
        wanted = entries_of(known[plug])
        if action == "status":
            return EXIT_OFF if set(wanted) <= listed else EXIT_ON
        if action in ("off", "reboot"):
            fencing.refuse_if_listed(session, listed)
            # before the lock: its object's primary may be an OSD of the dead node, and every
            # request to it would wait out Ceph's heartbeat grace
            _osds_down(session, plug, say)
            with fencing.exclusive(session, time.monotonic() + timeouts.FENCE_LOCK_WAIT):
                for entry in wanted:
                    blocklist.add(session, entry, timeouts.FENCE_EXPIRY)
                missing = set(wanted) - set(blocklist.entries(session))
                if missing:
                    raise LookupError(f"Ceph did not list {', '.join(sorted(missing))} after adding them")
            say(f"fenced {plug}: blocklisted {', '.join(wanted)}")
            return 0
        if action == "on":
            for entry in wanted:
                if entry in listed:
                    blocklist.remove(session, entry)
            say(f"unfenced {plug}: {', '.join(wanted)} not blocklisted")
            return 0
    raise LookupError(f"unknown action {action!r} (known: {', '.join(ACTIONS)})")


def _osds_down(session, plug: str, say) -> None:
    """Ceph-aware failover (helpers/ceph/fencedosds.py): the fenced node's OSDs marked down
    at once. The fence stands whatever happens here: a failure is reported, not returned."""
    from rbdvm.helpers.ceph import fencedosds
    from rbdvm.helpers.core.errors import RbdvmError

    try:
        ids = fencedosds.mark_down(session, plug, time.monotonic() + timeouts.OSD_OP_FENCE_AGENT)
    except RbdvmError as exc:
        say(f"could not mark the OSDs of {plug} down ({exc}); Ceph marks them "
            "down after its heartbeat grace")
        return
    if ids:
        say(f"marked {', '.join(f'osd.{i}' for i in ids)} of {plug} down")


def _say(text: str, out: bool = False) -> None:
    print(text, file=sys.stdout if out else sys.stderr)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    opts: dict = {}
    try:
        opts = parse(argv, "" if argv else sys.stdin.read())
        if opts["action"] == "metadata":
            sys.stdout.write(metadata_xml())
            return 0
        return run(opts, _say)
    except Exception as exc:  # noqa: BLE001 - pacemaker-fenced gets a reason and exit 1, never a traceback
        _say(f"fence_rbdvm: {opts.get('action', '?')} {opts.get('plug', '')} failed: {exc}")
        return EXIT_ERROR
