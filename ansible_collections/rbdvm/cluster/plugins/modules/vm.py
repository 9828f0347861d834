#!/usr/bin/python
# Copyright (C) 2026 rbdvm developers
# SPDX-License-Identifier: Apache-2.0

DOCUMENTATION = r"""
---
module: vm
short_description: Manage rbdvm virtual machines (Ceph RBD, libvirt, Pacemaker)
description:
  - Creates, clones, removes, enables, starts, stops, snapshots and describes the VMs of an
    rbdvm cluster, through the rbdvm library on the managed node (not by running the CLI).
  - Takes the parameters and commands of SEAPATH's C(cluster_vm) module, so a SEAPATH
    playbook runs after renaming the module; what rbdvm does not support is refused with a
    message naming it.
  - Declarative use with I(state) instead of I(command) (C(present), C(absent), C(enabled),
    C(started), C(stopped)) is idempotent, and supports check mode and diff mode.
  - C(changed) is honest (cluster_vm always reports unchanged). A command that finds the VM as asked
    reports no change. C(rollback_snapshot) always rolls back and always reports a change
    (Ceph cannot tell whether disks were written since a group snapshot).
  - Run it on one cluster node, as root (C(become)), where rbdvm is installed (the Debian
    package, or a venv given as C(ansible_python_interpreter)).
version_added: "0.1.0"
author:
  - rbdvm developers (@rbdvm)
options:
  name:
    description:
      - Name of the VM (letters and digits). Required except for C(list_vms).
    type: str
    aliases: [guest]
  command:
    description:
      - What to do, as in cluster_vm. Exactly one of I(command) and I(state) is given.
      - C(create) imports I(system_image) (and I(additional_disks)) with the base definition
        I(xml), then enables and starts the VM (unless I(enable=false) or I(nostart)). An
        existing VM that matches the request is left as it is; one that differs is refused
        unless I(force), which replaces it (its disks are lost).
      - C(clone) makes I(name) from I(src_name) (copy-on-write, or I(full) copy).
      - C(remove) removes the VM, disabling it first if it is enabled.
      - C(enable), C(disable), C(start), C(stop), C(status), C(list_vms).
      - C(create_snapshot), C(remove_snapshot), C(list_snapshots), C(rollback_snapshot),
        C(purge_image) (all snapshots, or I(purge_number) oldest, or those before I(purge_date)).
      - C(list_metadata), C(get_metadata), C(set_metadata).
      - C(define_colocation) (cluster_vm's name) or C(add_colocation).
      - C(backup) backs the VM up, while it runs, into I(backup_dir) (incremental when the
        directory holds its last backup; I(full) forces a full one). C(restore) rebuilds it
        from I(backup_dir) (the newest backup, or I(backup_at)), as I(restore_as) if given,
        then enables it as C(create) does. Everything is checked before anything is written.
      - C(add_pacemaker_remote) makes the VM a Pacemaker guest node (I(remote_node), with
        I(remote_addr), I(remote_port), I(remote_connect_timeout)); C(remove_pacemaker_remote)
        makes it an ordinary VM again. The VM keeps running either way.
    type: str
    choices: [create, clone, remove, enable, disable, start, stop, status, list_vms,
              create_snapshot, remove_snapshot, list_snapshots, rollback_snapshot, purge_image,
              list_metadata, get_metadata, set_metadata, define_colocation, add_colocation,
              add_pacemaker_remote, remove_pacemaker_remote, backup, restore]
  state:
    description:
      - The state the VM must be in (instead of I(command)).
      - C(present) exists with the given I(xml), settings and I(metadata) (created disabled
        if missing; its definition and settings changed in place if they differ).
      - C(enabled) present and under Pacemaker (started when first enabled, unless I(nostart)).
      - C(started) / C(stopped) enabled and running / stopped.
      - C(absent) removed (disabled first).
      - Settings and metadata keys not given are left as they are; a map setting's keys are
        merged into the stored map (an empty value removes a key).
    type: str
    choices: [present, absent, enabled, started, stopped]
  xml:
    description: Base libvirt domain XML (its content, e.g. from C(lookup)), for C(create),
      C(clone) and I(state).
    type: str
  system_image:
    description: System disk file (qcow2 or raw) on the managed node, for C(create) and I(state).
    type: path
  additional_disks:
    description: Data disk files (qcow2 or raw), imported when the VM is created.
    type: list
    elements: path
    default: []
  force:
    description:
      - C(create) and C(clone) replace an existing VM of that name (its disks are lost).
      - C(stop) with I(force) (a power-off) is refused; rbdvm stops through Pacemaker.
    type: bool
    default: false
  enable:
    description: C(create) and C(clone) put the new VM under Pacemaker.
    type: bool
    default: true
  nostart:
    description: A VM put under Pacemaker now is left stopped.
    type: bool
    default: false
  src_name:
    description: The VM to clone (C(clone)).
    type: str
  full:
    description: C(clone) makes an independent full copy instead of a copy-on-write clone;
      C(backup) takes a full backup even when an incremental one could be taken.
    type: bool
    default: false
  backup_dir:
    description: The backup directory on the managed node (C(backup), C(restore)).
    type: path
  backup_at:
    description: C(restore) restores this backup (its id) or the newest one taken at this time or
      before (ISO 8601; local time unless it has an offset). Default, the newest.
    type: str
  restore_as:
    description: C(restore) makes a new VM of this name (new UUID and MACs) instead of the VM
      itself.
    type: str
  accept_foreign:
    description: C(restore) accepts a backup this cluster did not sign (another cluster's).
    type: bool
    default: false
  snapshot_name:
    description: The snapshot (C(create_snapshot), C(remove_snapshot), C(rollback_snapshot)).
    type: str
  metadata_name:
    description: The metadata key (C(get_metadata)).
    type: str
  metadata:
    description: User metadata, key to value (C(create), C(clone), C(set_metadata), I(state)).
    type: dict
  purge_date:
    description: C(purge_image) removes the snapshots taken before this date. A date and time
      without a time zone is the managed node's local time, as with cluster_vm.
    type: dict
    suboptions:
      date:
        description: Date, YYYY-MM-DD (with I(time)), local time.
        type: str
      time:
        description: Time, HH:MM (with I(date)), local time.
        type: str
      iso_8601:
        description: Date and time in ISO 8601 (local time unless it has an offset).
        type: str
      posix:
        description: Seconds since 1970-01-01 UTC.
        type: int
  purge_number:
    description: C(purge_image) removes this many snapshots, the oldest first.
    type: int
  pinned_host:
    description:
      - The VM runs only on this node.
      - Given with I(preferred_host), the pin wins, as with cluster_vm, and the task warns.
    type: str
  preferred_host:
    description:
      - The VM runs on this node when it can.
      - Or an ordered list C(node1,node2) (most preferred first), or weights C(node1:3,node2:1) (higher is
        preferred). The VM runs on the most preferred node that is up.
    type: str
  live_migration:
    description: Pacemaker may live-migrate the VM.
    type: bool
  migration_user:
    description: Stored as the agent parameter C(migration_user) (I(pacemaker_params)).
    type: str
  stop_timeout:
    description:
      - How long a graceful stop may take, as Pacemaker reads a duration (what cluster_vm hands
        to it) - a number of seconds, C(120s), C(2min), C(1h), or ISO 8601 C(PT2M).
      - Stored in whole seconds, rounded up.
    type: raw
  migrate_to_timeout:
    description: How long a live migration may take, given as I(stop_timeout) is.
    type: raw
  migration_downtime:
    description: Maximum downtime of a live migration - a number of milliseconds, or a duration
      with its unit (C(500ms), C(1s)).
    type: raw
  priority:
    description: Pacemaker priority of the VM's resource, a whole number (as a number or text).
    type: raw
  disk_bus:
    description: Bus of the VM's disks, any bus libvirt accepts (virtio, scsi, sata, usb, ide,
      fdc, xen, sd, uml); whether QEMU runs a disk on it is checked when the VM starts.
    type: str
  pacemaker_meta:
    description: Extra meta attributes of the resource.
    type: dict
  pacemaker_params:
    description: Extra parameters of the resource agent.
    type: dict
  pacemaker_utilization:
    description: Utilization attributes of the resource.
    type: dict
  clear_constraint:
    description: C(clone) does not inherit the source's pinned or preferred host.
    type: bool
    default: false
  clear_pacemaker_meta:
    description: C(clone) does not inherit the source's I(pacemaker_meta).
    type: bool
    default: false
  clear_pacemaker_params:
    description: C(clone) does not inherit the source's I(pacemaker_params).
    type: bool
    default: false
  clear_pacemaker_utilization:
    description: C(clone) does not inherit the source's I(pacemaker_utilization).
    type: bool
    default: false
  colocated_vms:
    description: VMs to keep with this one (C(define_colocation), C(add_colocation)).
    type: list
    elements: str
  strong:
    description: The colocation is strong (the VM runs only where they run).
    type: bool
    default: false
  allow_restart:
    description: A change of definition or settings may restart a running VM through
      Pacemaker (otherwise a definition change applies at the next start, and a setting
      that needs a restart is refused).
    type: bool
    default: false
  crm_config_cmd:
    description: Refused when given (rbdvm does not run crm shell commands; add the
      constraints with pcs).
    type: list
    elements: str
  remote_node:
    description:
      - The name of the Pacemaker guest node the VM is (pacemaker_remoted runs in it, and
        Pacemaker runs resources there), for C(add_pacemaker_remote), C(create) and I(state).
      - Signed with the VM's settings. See rbdvm's docs/guest-nodes.md for what Pacemaker needs
        of the guest (its authkey, the port open).
    type: str
    aliases: [remote_name]
  remote_addr:
    description: The address the cluster reaches the guest node at (default, its name).
    type: str
    aliases: [remote_address]
  remote_port:
    description: The port of the guest's pacemaker_remoted (default 3121), as a number or text.
    type: raw
  remote_connect_timeout:
    description: How long the cluster waits for the guest node to connect, given as
      I(stop_timeout) is (default 60s).
    type: raw
    aliases: [remote_timeout]
  pool:
    description: RBD pool of the VMs (default C(rbd), or C(RBDVM_POOL)).
    type: str
  namespace:
    description: RBD namespace of the VMs (default none, or C(RBDVM_NAMESPACE)).
    type: str
  ceph_conf:
    description: ceph.conf of the cluster (default C(/etc/ceph/ceph.conf)).
    type: path
  ceph_id:
    description: Ceph user, without C(client.) (default C(rbdvm)).
    type: str
attributes:
  check_mode:
    description: Says what would change (in I(actions)) and changes nothing; a request that
      would be refused fails as it would without check mode.
    support: full
  diff_mode:
    description: Shows the VM's definition, settings, metadata and status before and after.
    support: full
requirements:
  - rbdvm (the Debian package, or pip) on the managed node
notes:
  - Failures carry rbdvm's message (what failed, why, what to do) and its error class in
    C(error).
"""

EXAMPLES = r"""
- name: Create and start guest0 (as with SEAPATH's cluster_vm)
  rbdvm.cluster.vm:
    name: guest0
    command: create
    system_image: /var/tmp/guest0.qcow2
    xml: "{{ lookup('file', 'guest0.xml') }}"
    live_migration: true
    metadata:
      owner: substation-a

- name: Snapshot it before an upgrade
  rbdvm.cluster.vm:
    name: guest0
    command: create_snapshot
    snapshot_name: beforeupgrade

- name: Keep guest1 declared, running
  rbdvm.cluster.vm:
    name: guest1
    state: started
    system_image: /var/tmp/guest1.qcow2
    xml: "{{ lookup('template', 'guest1.xml.j2') }}"
    priority: 10
    preferred_host: node1

- name: Remove snapshots older than a date
  rbdvm.cluster.vm:
    name: guest0
    command: purge_image
    purge_date:
      date: "2026-01-31"
      time: "08:00"

- name: Gone
  rbdvm.cluster.vm:
    name: guest2
    state: absent
"""

RETURN = r"""
status:
  description:
    - The VM's status as cluster_vm gives it (C(status), and after I(state)) - C(Undefined),
      C(Disabled), or Pacemaker's own text of its resource.
    - In check mode with I(state), the status the VM would have, in rbdvm's words (I(vm_status)).
  type: str
  returned: when asked, or with I(state)
  sample: Started node1
vm_status:
  description: The VM's status in rbdvm's words - Undefined, Disabled, Started, Stopped, Starting, Migrating,
    Stopping or Failed.
  type: str
  returned: when asked, or with I(state)
  sample: Started
n_plus_one:
  description:
    - After a change that enabled the VM, whether the cluster would still restart every VM if any one node
      were lost (Pacemaker's scheduler over a copy of the CIB, as C(rbdvm capacity)). C(stopped) names, per
      node, the VMs its loss would leave down; each is also a warning. C(unknown) when the check could not run.
  type: dict
  returned: when the task enabled the VM
  sample: {"absorbs_any_loss": false, "stopped": {"node1": ["vm3"]}}
node:
  description: The node the VM runs on, or null.
  type: str
  returned: when asked, or with I(state) (not in check mode)
  sample: node1
target_role:
  description: What Pacemaker is asked to do with the VM (Started, Stopped), or null when it
    is not enabled.
  type: str
  returned: when asked, or with I(state) (not in check mode)
reason:
  description: Why the VM is not where it should be (the agent's last failure, or that no node
    may run it), or null.
  type: str
  returned: when asked, or with I(state) (not in check mode)
list_vms:
  description: The VMs' names.
  type: list
  elements: str
  returned: command list_vms
vms:
  description: The VMs with their status, node and storage state.
  type: list
  elements: dict
  returned: command list_vms
list_snapshots:
  description: The snapshots' names, oldest first (also as C(list_snapshot), cluster_vm's key).
  type: list
  elements: str
  returned: command list_snapshots
snapshots:
  description: The snapshots with their time and disks.
  type: list
  elements: dict
  returned: command list_snapshots
list_metadata:
  description: The VM's user metadata keys.
  type: list
  elements: str
  returned: command list_metadata
metadata:
  description: The VM's user metadata.
  type: dict
  returned: commands list_metadata and set_metadata
metadata_value:
  description: The value of I(metadata_name).
  type: str
  returned: command get_metadata
actions:
  description: What was done (or, in check mode, would be), in order.
  type: list
  elements: str
  returned: always
purged:
  description: The snapshots C(purge_image) removed (or would remove), and those it kept.
  type: dict
  returned: command purge_image
backup:
  description: The backup taken - its id, kind (full or incremental), parent, consistency,
    size and path.
  type: dict
  returned: command backup (not in check mode)
restored:
  description: What was restored - the VM, the backup and its chain, the disks, the UUID.
  type: dict
  returned: command restore (not in check mode)
error:
  description: rbdvm's error class when the module failed (UsageError, NotFound, Conflict,
    ClusterUnavailable, Untrusted, ...).
  type: str
  returned: failure
code:
  description: The stable code of what went wrong (VM_NOT_FOUND, VM_BUSY, RESERVED_KEY...; the
    table is in rbdvm's docs/errors.md), for a C(failed_when) or C(until) to test.
  type: str
  returned: failure
  sample: VM_BUSY
details:
  description: The objects the error is about (vm, snapshot, disk, node...).
  type: dict
  returned: failure
problems:
  description: When an input has several problems, each of them (code, message, details).
  type: list
  elements: dict
  returned: failure
"""

import datetime
import os
import traceback

from ansible.module_utils.basic import AnsibleModule

try:
    from rbdvm.helpers.ceph import vmstore
    from rbdvm.helpers.ceph.session import Session
    from rbdvm.helpers.core import backupset, hints, vmschema
    from rbdvm.helpers.core.errors import NotFound, RbdvmError, UsageError
    from rbdvm.helpers.core.settings import ceph_target_from_env
    from rbdvm.helpers.ops import backup as backups
    from rbdvm.helpers.ops import capacity, cloning, configure, declared, lifecycle, metadata, placement, snapshots
    from rbdvm.helpers.ops import restore as restoring
    from rbdvm.helpers.ops.env import Env
except ImportError:
    RBDVM_IMPORT_ERROR = traceback.format_exc()
else:
    RBDVM_IMPORT_ERROR = None

COMMANDS = ("create", "clone", "remove", "enable", "disable", "start", "stop", "status", "list_vms",
            "create_snapshot", "remove_snapshot", "list_snapshots", "rollback_snapshot", "purge_image",
            "list_metadata", "get_metadata", "set_metadata", "define_colocation", "add_colocation",
            "add_pacemaker_remote", "remove_pacemaker_remote", "backup", "restore")
STATES = ("present", "absent", "enabled", "started", "stopped")

ARGUMENT_SPEC = dict(
    name=dict(type="str", aliases=["guest"]),
    command=dict(type="str", choices=list(COMMANDS)),
    state=dict(type="str", choices=list(STATES)),
    xml=dict(type="str"),
    system_image=dict(type="path"),
    additional_disks=dict(type="list", elements="path", default=[]),
    force=dict(type="bool", default=False),
    enable=dict(type="bool", default=True),
    nostart=dict(type="bool", default=False),
    src_name=dict(type="str"),
    full=dict(type="bool", default=False),
    backup_dir=dict(type="path"),
    backup_at=dict(type="str"),
    restore_as=dict(type="str"),
    accept_foreign=dict(type="bool", default=False),
    snapshot_name=dict(type="str"),
    metadata_name=dict(type="str"),
    metadata=dict(type="dict"),
    purge_date=dict(type="dict", options=dict(date=dict(type="str"), time=dict(type="str"),
                                              iso_8601=dict(type="str"), posix=dict(type="int"))),
    purge_number=dict(type="int"),
    pinned_host=dict(type="str"),
    preferred_host=dict(type="str"),
    live_migration=dict(type="bool"),
    migration_user=dict(type="str"),
    stop_timeout=dict(type="raw"),
    migrate_to_timeout=dict(type="raw"),
    migration_downtime=dict(type="raw"),
    priority=dict(type="raw"),
    disk_bus=dict(type="str"),
    pacemaker_meta=dict(type="dict"),
    pacemaker_params=dict(type="dict"),
    pacemaker_utilization=dict(type="dict"),
    clear_constraint=dict(type="bool", default=False),
    clear_pacemaker_meta=dict(type="bool", default=False),
    clear_pacemaker_params=dict(type="bool", default=False),
    clear_pacemaker_utilization=dict(type="bool", default=False),
    colocated_vms=dict(type="list", elements="str"),
    strong=dict(type="bool", default=False),
    allow_restart=dict(type="bool", default=False),
    crm_config_cmd=dict(type="list", elements="str"),
    remote_node=dict(type="str", aliases=["remote_name"]),
    remote_addr=dict(type="str", aliases=["remote_address"]),
    remote_port=dict(type="raw"),
    remote_connect_timeout=dict(type="raw", aliases=["remote_timeout"]),
    pool=dict(type="str"),
    namespace=dict(type="str"),
    ceph_conf=dict(type="path"),
    ceph_id=dict(type="str"),
)

REQUIRED_IF = [
    ("command", "create", ("name", "xml", "system_image")),
    ("command", "clone", ("name", "src_name")),
    ("command", "get_metadata", ("name", "metadata_name")),
    ("command", "set_metadata", ("name", "metadata")),
    ("command", "create_snapshot", ("name", "snapshot_name")),
    ("command", "remove_snapshot", ("name", "snapshot_name")),
    ("command", "rollback_snapshot", ("name", "snapshot_name")),
    ("command", "define_colocation", ("name", "colocated_vms")),
    ("command", "add_colocation", ("name", "colocated_vms")),
    ("command", "add_pacemaker_remote", ("name", "remote_node")),
    ("command", "backup", ("name", "backup_dir")),
    ("command", "restore", ("name", "backup_dir")),
] + [("command", c, ("name",)) for c in COMMANDS if c not in ("list_vms",)] + [
    ("state", s, ("name",)) for s in STATES]


def _hints() -> dict:
    """The fixes rbdvm suggests (rbdvm.helpers.core.hints), in this module's words; the others
    keep rbdvm's neutral wording."""
    return {
        hints.CEPH_CONF: "Point ceph_conf at the cluster's ceph.conf",
        hints.CEPH_ID: "Install /etc/ceph/ceph.client.{client_id}.keyring on the node, or set ceph_id",
        hints.POOL: "Set pool to the pool the VMs are in",
        hints.REPLACE_VM: "Choose another name, or set force: true to replace it (its disks and snapshots are "
                          "deleted)",
        hints.LIVE_MIGRATION: "Set live_migration: true for {vm}, or move it stopped",
        hints.FORCE_REMOVE: "Disable it first (command: disable), or remove it with state: absent, which does",
        hints.PURGE_WHICH: "Give purge_number or purge_date, or neither to remove every snapshot",
        hints.ALLOW_RESTART: "Set allow_restart: true to let Pacemaker restart it, or change it while the VM is "
                             "stopped",
        hints.GIVE_BASE: "Give its base definition first (state: present with xml)",
    }


class Refused(Exception):
    """A parameter or command of cluster_vm that rbdvm does not support."""


def _settings(p: dict) -> dict:
    """rbdvm's settings (vmschema.SETTINGS, each a parameter of the same name) given here."""
    out = {s.name: p[s.name] for s in vmschema.SETTINGS if p.get(s.name) is not None}
    if p.get("migration_user"):
        out["pacemaker_params"] = {**out.get("pacemaker_params", {}), "migration_user": p["migration_user"]}
    return out


def _restore_point(at):
    """backup_at: a backup id as it is, else an ISO 8601 time (local unless it says)."""
    if at is None or backupset.is_id(at):
        return at
    try:
        when = datetime.datetime.fromisoformat(at)
    except ValueError:
        raise UsageError(f"backup_at {at!r} is neither a backup id nor an ISO 8601 time") from None
    return when if when.tzinfo else when.astimezone()


def _purge_before(purge_date):
    """cluster_vm's purge_date as an aware datetime, or None. A date and time without a zone
    is the node's local time, as cluster_vm reads it (naive datetimes, compared locally)."""
    if not purge_date:
        return None
    given = {k for k, v in purge_date.items() if v is not None}
    if given in ({"date", "time"}, {"date"}):
        day = datetime.date.fromisoformat(purge_date["date"])
        at = datetime.time.fromisoformat(purge_date["time"]) if purge_date.get("time") else datetime.time()
        return datetime.datetime.combine(day, at).astimezone()
    if given == {"iso_8601"}:
        when = datetime.datetime.fromisoformat(purge_date["iso_8601"])
        return when if when.tzinfo else when.astimezone()
    if given == {"posix"}:
        return datetime.datetime.fromtimestamp(purge_date["posix"], datetime.timezone.utc)
    raise UsageError("purge_date takes date (and time), or iso_8601, or posix", f"got {sorted(given)}")


class Run:
    """One module invocation: the parameters, the operations' environment, and what it did."""

    def __init__(self, module, env):
        self.module, self.p, self.env = module, module.params, env
        self.check = module.check_mode
        self.changed = False
        self.actions = []
        self.result = {}
        self.diff = None

    def did(self, what: str, step=None):
        """Record a change; run `step` unless in check mode."""
        self.changed = True
        self.actions.append(what)
        return None if self.check or step is None else step()

    # -------------------------------------------------------------- declarative
    def declaration(self, state: str):
        """The VM as this task's parameters describe it."""
        p = self.p
        return declared.Declared(
            name=p["name"], state=state, xml=p["xml"], image=p["system_image"],
            data_images=tuple(p["additional_disks"] or ()), metadata=dict(p["metadata"] or {}),
            settings=_settings(p), start_when_enabled=not p["nostart"], allow_restart=p["allow_restart"])

    def converge(self, d, plan=None):
        """Carry out (or, in check mode, report) the plan that makes the VM as `d` says."""
        plan = plan or declared.plan(self.env, d)
        for step in plan.steps:
            self.actions.append(step.what)
        self.changed = self.changed or plan.changed
        self.diff = {"before": plan.before, "after": plan.after}
        self.result["status"] = self.result["vm_status"] = plan.after["status"]
        if self.check:
            return
        if plan.changed:
            declared.apply(self.env, d, plan)
            if d.state in ("enabled", "started"):
                self.n_plus_one()
        self.report_status(lifecycle.status(self.env, d.name))

    def n_plus_one(self):
        """What an enable leaves of N+1 (rbdvm enable's warning): `n_plus_one` in the result,
        and a warning naming the VMs a single node's loss would leave down."""
        check = self.result["n_plus_one"] = capacity.shortfall(self.env)
        if "unknown" in check:
            self.module.warn(f"could not check that the cluster absorbs the loss of any one node: {check['unknown']}")
        for node, vms in sorted(check.get("stopped", {}).items()):
            self.module.warn(f"if {node} were lost, {', '.join(vms)} would not restart anywhere (rbdvm capacity)")

    # -------------------------------------------------------------- commands
    def cmd_create(self):
        p = self.p
        d = self.declaration("enabled" if p["enable"] else "present")
        if p["force"] and declared.snapshot(self.env, d.name)["exists"]:
            self.did(f"replace VM {d.name} (its disks are deleted)",
                     lambda: lifecycle.remove(self.env, d.name, force=True))
            if self.check:    # replaced: what follows is a create
                self.actions.append(f"create VM {d.name} from {d.image}")
                return
        plan = declared.plan(self.env, d)
        differs = [s.what for s in plan.steps if s.action in ("edit", "set", "metadata")]
        if differs:
            raise UsageError(f"VM {d.name} exists and differs from this create", "; ".join(differs),
                             "Set force: true to replace it (its disks are lost), or use state: present "
                             "to change it in place")
        self.converge(d, plan)

    def cmd_clone(self):
        p = self.p
        src, dst = p["src_name"], p["name"]
        now = declared.snapshot(self.env, dst)
        if now["exists"] and p["force"]:
            self.did(f"replace VM {dst} (its disks are deleted)",
                     lambda: lifecycle.remove(self.env, dst, force=True))
        elif now["exists"]:
            rec = metadata.list_metadata(self.env, dst, include_reserved=True)
            origin = (vmschema.cloned_from(rec) or {}).get("vm")
            if origin != src:
                raise UsageError(f"VM {dst} exists and is not a clone of {src}",
                                 f"it was {'cloned from ' + origin if origin else 'not cloned'}",
                                 "Set force: true to replace it (its disks are lost), or choose another name")
        if not now["exists"] or p["force"]:
            unset = [n for flag, names in (("clear_constraint", ("pinned_host", "preferred_host")),
                                           ("clear_pacemaker_meta", ("pacemaker_meta",)),
                                           ("clear_pacemaker_params", ("pacemaker_params",)),
                                           ("clear_pacemaker_utilization", ("pacemaker_utilization",)))
                     if p[flag] for n in names]
            self.did(f"clone VM {src} into {dst}" + (" (full copy)" if p["full"] else ""),
                     lambda: cloning.clone(self.env, src, dst, full=p["full"], base_xml=p["xml"],
                                           metadata=self.declaration("present").given_metadata,
                                           settings=_settings(p), unset=unset))
        if p["enable"]:
            if self.check and self.changed:
                self.actions.append(f"put VM {dst} under Pacemaker")
                return
            self.converge(self.declaration("enabled"))

    def cmd_remove(self):
        self.converge(self.declaration("absent"))

    def _status(self):
        return lifecycle.status(self.env, self.p["name"])["status"]

    def cmd_enable(self):
        status = self._status()
        if status == "Undefined":
            raise vmstore.no_such_vm(self.env.session, self.p["name"])
        if status == "Disabled":
            self.did(f"put VM {self.p['name']} under Pacemaker",
                     lambda: lifecycle.enable(self.env, self.p["name"], start=not self.p["nostart"]))
            if not self.check:
                self.n_plus_one()

    def cmd_disable(self):
        if self._status() not in ("Disabled", "Undefined"):
            self.did(f"take VM {self.p['name']} out of Pacemaker (stopping it)",
                     lambda: lifecycle.disable(self.env, self.p["name"]))

    def cmd_start(self):
        if self._status() != "Started":
            self.did(f"start VM {self.p['name']}", lambda: lifecycle.start(self.env, self.p["name"]))

    def cmd_stop(self):
        if self.p["force"]:
            raise Refused("force with command stop (a power-off) is not supported by rbdvm: it stops VMs "
                          "through Pacemaker, gracefully within stop_timeout, then forcibly")
        if self._status() != "Stopped":
            self.did(f"stop VM {self.p['name']}", lambda: lifecycle.stop(self.env, self.p["name"]))

    def cmd_status(self):
        self.report_status(lifecycle.status(self.env, self.p["name"]))

    def report_status(self, st: dict):
        """`status` in cluster_vm's words (Pacemaker's text), rbdvm's reading beside it."""
        self.result.update(status=lifecycle.status_words(self.env, self.p["name"], st), vm_status=st["status"],
                           node=st["node"], target_role=st["target"], reason=st["reason"])

    def cmd_list_vms(self):
        vms = lifecycle.list_status(self.env)
        self.result["list_vms"] = [v["name"] for v in vms]
        self.result["vms"] = vms

    def _snapshot_names(self):
        return [s["name"] for s in snapshots.list_snapshots(self.env, self.p["name"])]

    def cmd_create_snapshot(self):
        p = self.p
        if p["snapshot_name"] not in self._snapshot_names():
            self.did(f"snapshot VM {p['name']} as {p['snapshot_name']}",
                     lambda: snapshots.create_snapshot(self.env, p["name"], p["snapshot_name"]))

    def cmd_remove_snapshot(self):
        p = self.p
        if p["snapshot_name"] in self._snapshot_names():
            self.did(f"remove snapshot {p['snapshot_name']} of VM {p['name']}",
                     lambda: snapshots.remove_snapshot(self.env, p["name"], p["snapshot_name"]))

    def cmd_list_snapshots(self):
        snaps = snapshots.list_snapshots(self.env, self.p["name"])
        self.result["list_snapshots"] = self.result["list_snapshot"] = [s["name"] for s in snaps]
        self.result["snapshots"] = snaps

    def cmd_rollback_snapshot(self):
        p = self.p
        if p["snapshot_name"] not in self._snapshot_names():
            raise NotFound("Snapshot does not exist on VM", f"VM {p['name']} has no snapshot {p['snapshot_name']}",
                           "List them with command: list_snapshots")
        self.did(f"roll VM {p['name']} back to snapshot {p['snapshot_name']}",
                 lambda: lifecycle.rollback(self.env, p["name"], p["snapshot_name"]))

    def cmd_purge_image(self):
        p = self.p
        before = _purge_before(p["purge_date"])     # purge_number excludes it (mutually_exclusive)
        out = snapshots.purge(self.env, p["name"], everything=before is None and p["purge_number"] is None,
                              oldest=p["purge_number"], before=before, dry_run=self.check)
        self.result["purged"] = {"removed": out["removed"], "kept": out["kept"]}
        if out["removed"]:
            self.changed = True
            self.actions.append(f"remove snapshots {', '.join(out['removed'])} of VM {p['name']}")

    def cmd_list_metadata(self):
        md = metadata.list_metadata(self.env, self.p["name"])
        self.result["list_metadata"] = list(md)
        self.result["metadata"] = md

    def cmd_get_metadata(self):
        self.result["metadata_value"] = metadata.get_metadata(self.env, self.p["name"], self.p["metadata_name"])

    def cmd_set_metadata(self):
        p = self.p
        before = metadata.list_metadata(self.env, p["name"])
        wanted = self.declaration("present").given_metadata
        vmschema.check_user_metadata(wanted)
        different = {k: v for k, v in wanted.items() if before.get(k) != v}
        after = {**before, **wanted}
        self.diff = {"before": {"metadata": before}, "after": {"metadata": after}}
        self.result["metadata"] = before if self.check else after
        if different:
            def write():
                for k, v in different.items():
                    metadata.set_metadata(self.env, p["name"], k, v)
            self.did(f"set metadata {', '.join(sorted(different))} of VM {p['name']}", write)

    def cmd_define_colocation(self):
        p = self.p
        md = metadata.list_metadata(self.env, p["name"], include_reserved=True)
        current = vmschema.colocations(md)
        wanted = [{"with": o, "strong": p["strong"], "anti": False} for o in dict.fromkeys(p["colocated_vms"])]
        if any(w not in current for w in wanted):
            self.did(f"colocate VM {p['name']} with {', '.join(w['with'] for w in wanted)}",
                     lambda: placement.colocate(self.env, p["name"], p["colocated_vms"], strong=p["strong"]))

    cmd_add_colocation = cmd_define_colocation

    def _settings_now(self) -> dict:
        return vmschema.decode(metadata.list_metadata(self.env, self.p["name"], include_reserved=True))

    def cmd_add_pacemaker_remote(self):
        p = self.p
        wanted = {n: p[n] for n in vmschema.REMOTE if p.get(n) is not None}
        normal = vmschema.decode(vmschema.encode(wanted))      # refused here, before anything is read
        now = self._settings_now()
        changes = {n: v for n, v in normal.items() if now.get(n) != v}
        if changes:
            self.did(f"make VM {p['name']} the Pacemaker guest node {p['remote_node']}",
                     lambda: configure.set_settings(self.env, p["name"], wanted, restart=p["allow_restart"]))

    def cmd_remove_pacemaker_remote(self):
        p = self.p
        if self._settings_now().get("remote_node"):
            self.did(f"make VM {p['name']} an ordinary VM again (no guest node)",
                     lambda: configure.set_settings(self.env, p["name"], {"remote_node": ""}))

    def cmd_backup(self):
        p = self.p
        out = self.did(f"back VM {p['name']} up into {p['backup_dir']}" + (" (full)" if p["full"] else ""),
                       lambda: backups.backup(self.env, p["name"], p["backup_dir"], full=p["full"]))
        if out:
            self.result["backup"] = out

    def cmd_restore(self):
        p = self.p
        target = p["restore_as"] or p["name"]
        if not p["force"] and declared.snapshot(self.env, target)["exists"]:
            origin = vmschema.stored_json(metadata.list_metadata(self.env, target, include_reserved=True),
                                          vmschema.RESTORED_FROM, {})
            if isinstance(origin, dict) and origin.get("vm") == p["name"] and (
                    p["backup_at"] is None or origin.get("backup") == p["backup_at"]):
                # restored by an earlier run of this task: a playbook run again replaces nothing
                self.result["restored"] = {"name": target, "vm": p["name"], "backup": origin.get("backup")}
                return
        out = self.did(f"restore VM {target} from the backups of VM {p['name']} in {p['backup_dir']}",
                       lambda: restoring.restore(self.env, p["backup_dir"], p["name"], as_name=p["restore_as"],
                                                 at=_restore_point(p["backup_at"]), force=p["force"],
                                                 accept_foreign=p["accept_foreign"]))
        if out:
            self.result["restored"] = out
        if p["enable"] and not self.check:
            self.did(f"put VM {target} under Pacemaker",
                     lambda: lifecycle.enable(self.env, target, start=not p["nostart"]))


def _refusals(p: dict) -> list:
    out = []
    if p.get("crm_config_cmd"):
        out.append("crm_config_cmd is not supported by rbdvm (it runs no crm shell commands): add those "
                   "constraints with pcs, after the VM is enabled")
    return out


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True, required_if=REQUIRED_IF,
                           mutually_exclusive=[("command", "state"), ("purge_date", "purge_number")],
                           required_one_of=[("command", "state")])
    p = module.params
    if p["pinned_host"] and p["preferred_host"]:
        # vm_manager lets the pin win, so a SEAPATH inventory giving both runs as it did
        module.warn(f"pinned_host and preferred_host are both given: the VM is pinned to {p['pinned_host']} and "
                    f"preferred_host ({p['preferred_host']}) is ignored, as cluster_vm does")
        p["preferred_host"] = None
    refused = _refusals(p)
    if refused:
        module.fail_json(msg="; ".join(refused), error="Unsupported", changed=False)
    if RBDVM_IMPORT_ERROR:
        module.fail_json(msg="the rbdvm library cannot be imported on this node: install rbdvm (the Debian "
                             "package), or point ansible_python_interpreter at the python that has it",
                         exception=RBDVM_IMPORT_ERROR)
    target = ceph_target_from_env(os.environ, conf=p["ceph_conf"], client_id=p["ceph_id"], pool=p["pool"],
                                  namespace=p["namespace"])
    run = None
    try:
        with Session(target) as session:
            run = Run(module, Env(session=session))
            if p["state"]:
                run.converge(run.declaration(p["state"]))
            else:
                getattr(run, "cmd_" + p["command"])()
    except Refused as exc:
        module.fail_json(msg=str(exc), error="Unsupported", changed=False)
    except RbdvmError as exc:
        done = run.actions if run else []
        report = exc.as_dict(_hints())
        module.fail_json(msg=report["message"], error=type(exc).__name__, code=report["code"],
                         details=report["details"], problems=report.get("problems", []),
                         changed=bool(run and run.changed and not run.check), actions=done)
    out = dict(changed=run.changed, actions=run.actions, **run.result)
    if module._diff and run.diff is not None:
        out["diff"] = run.diff
    module.exit_json(**out)


if __name__ == "__main__":
    main()
