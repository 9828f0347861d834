"""The parameters of ocf:rbdvm:VirtualDomain, declared once, with the rule each value's
content must follow: the agent derives its meta-data and validation from them (ocf/params),
and a VM's stored agent parameters (the pacemaker_params setting) are checked by the same
rules before they are signed or written into the CIB (vmschema). Standard library only:
monitor imports it.
"""

from . import defaults, peer

# how the agent reads a boolean parameter (Pacemaker's and the shell's spellings)
TRUE = frozenset({"1", "true", "yes", "on", "y"})
FALSE = frozenset({"0", "false", "no", "off", "n", ""})

class Param:
    # a plain class: dataclasses costs ~17 ms of imports, a third of a monitor
    __slots__ = ("name", "kind", "default", "short", "long", "unique", "choices", "rule")

    def __init__(self, name, kind, default, short, long="", unique=False, choices=(), rule=None):
        self.name, self.kind, self.default, self.short = name, kind, default, short  # kind: string | boolean | integer
        self.long, self.unique, self.choices = long, unique, choices
        # a string's content rule: value -> why it is refused, or "" (choices need none)
        self.rule = rule


PARAMS = (
    Param("vm", "string", "", "VM name (its definition is read from Ceph)",
          "Name of a VM created with `rbdvm create`: its libvirt XML is the `xml` metadata of "
          "its system disk in Ceph, so no node needs a local file. Give either vm or config.",
          unique=True),
    Param("config", "string", "", "Virtual domain configuration file",
          "Absolute path of a libvirt domain XML file, as with ocf:heartbeat:VirtualDomain. "
          "Give either vm or config.", unique=True),
    Param("pool", "string", defaults.POOL, "RBD pool of the VM"),
    Param("namespace", "string", "", "RBD namespace of the VM (none by default)"),
    Param("ceph_conf", "string", defaults.CEPH_CONF, "Ceph configuration file"),
    Param("ceph_id", "string", defaults.CEPH_ID, "Ceph client name (without 'client.')",
          "The cephx user the agent reads the VM's definition and disk clients with; its "
          "keyring is found the usual way (/etc/ceph/ceph.client.<id>.keyring)."),
    Param("hypervisor", "string", defaults.HYPERVISOR, "Hypervisor URI"),
    Param("force_stop", "boolean", False, "Always force shutdown on stop",
          "Destroy the domain at once on stop instead of a graceful shutdown first."),
    Param("shutdown_mode", "string", "", "Graceful shutdown method",
          "How the graceful stop asks the guest: acpi, agent, initctl, signal or paravirt "
          "(libvirt's shutdown modes); empty lets libvirt choose.",
          choices=("", "acpi", "agent", "initctl", "signal", "paravirt")),
    Param("stop_margin", "integer", 5, "Seconds kept for destroy at the end of stop",
          "A graceful stop may use the stop operation's timeout minus this many seconds; "
          "then the domain is destroyed."),
    Param("migration_transport", "string", "", "Remote hypervisor transport",
          "Transport of the URI to the target node's libvirtd: qemu+<transport>://<node>/system "
          "(tcp, tls, ssh, libssh, libssh2). Empty: qemu://<node>/system.",
          choices=("",) + peer.TRANSPORTS),
    Param("migration_user", "string", "", "Remote username for the remote URI", rule=peer.user_refusal),
    Param("migration_network_suffix", "string", "", "Migration network host name suffix",
          "Appended to the target node name in the remote and migration URIs, to use a "
          "dedicated migration network (node2 + -mig = node2-mig).", rule=peer.suffix_refusal),
    Param("remoteuri", "string", "", "Custom remote URI of the target libvirtd",
          "Replaces the URI built from the transport, user and node name; %n is the target "
          "node's name: qemu[+TRANSPORT]://[USER@]HOST[:PORT]/system, nothing else.",
          rule=peer.remoteuri_refusal),
    Param("migrateuri", "string", "", "Custom migration URI for the memory transfer",
          "Where QEMU sends the memory (tcp://%n-mig:49152); %n is the target node's name. "
          "Empty lets the target's libvirtd choose.", rule=peer.migrateuri_refusal),
    Param("migration_downtime", "integer", 0, "Maximum live migration downtime (ms)",
          "0 keeps QEMU's default."),
    Param("migration_speed", "integer", 0, "Live migration bandwidth (MiB/s)", "0: unlimited."),
    Param("migration_auto_converge", "boolean", False, "Throttle the guest's vCPUs if the "
          "migration does not converge"),
    Param("migrate_margin", "integer", 5, "Seconds kept to abort at the end of migrate_to",
          "A live migration still running this many seconds before migrate_to's timeout is "
          "aborted, so the VM keeps running on the source."),
    Param("autoset_utilization_cpu", "boolean", True, "Set the resource's cpu utilization",
          "From the domain's vCPU count, at start and migration, only when it changed."),
    Param("autoset_utilization_hv_memory", "boolean", True,
          "Set the resource's hv_memory utilization", "From the domain's memory (MiB), at "
          "start and migration, only when it changed."),
)
BY_NAME = {p.name: p for p in PARAMS}


def refusal(name: str, raw: str) -> str:
    """Why `raw` may not be parameter `name`'s value ("" when it may): a boolean, a
    non-negative integer, one of its choices, or what its rule admits."""
    p = BY_NAME.get(name)
    if p is None:
        return "not a parameter of ocf:rbdvm:VirtualDomain"
    if p.kind == "boolean":
        return "" if raw.strip().lower() in TRUE | FALSE else "not a boolean (true/false)"
    if p.kind == "integer":
        return "" if raw.strip().isdigit() else "not a whole number (0 or more)"
    if p.choices and raw not in p.choices:
        return f"must be one of {', '.join(c or '(empty)' for c in p.choices)}"
    return p.rule(raw) if p.rule and raw else ""

