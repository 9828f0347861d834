"""Fixes an error can suggest that depend on the front end: how a setting is given (a CLI
flag, an environment variable, a resource parameter). Helpers raise an error with a `Hint`;
each front end words it from its own table (cli/hints.py, the agent's ocf/hints.py), and
the neutral wording below is used where no table has it. A helper's message never names a
CLI flag: an exit reason in crm_mon must not say "--conf".
"""

# what the operator can change, by name
CEPH_CONF = "ceph_conf"            # which ceph.conf rbdvm reads
CEPH_ID = "ceph_id"                # which Ceph user rbdvm connects as
POOL = "pool"                      # which pool the VMs are in
REPLACE_VM = "replace_vm"          # create over an existing VM (deletes it)
LIVE_MIGRATION = "live_migration"  # the VM's live-migration setting
FORCE_REMOVE = "force_remove"      # remove an enabled VM (disables it first)
PURGE_WHICH = "purge_which"        # which snapshots a purge removes
ALLOW_RESTART = "allow_restart"    # a change that restarts a running VM
GIVE_BASE = "give_base"            # a VM made by another tool has no base definition
TRUST = "trust"                    # review and sign a VM's stored definition and settings
TRUST_SNAPSHOT = "trust_snapshot"  # ... the definition recorded with one of its snapshots
DRAIN_UNTRUSTED = "drain_untrusted"  # drain a node that runs VMs this cluster did not sign
RESTORE_FOREIGN = "restore_foreign"  # restore a backup this cluster did not sign
RESTORE_OVER = "restore_over"      # restore over the VM it was taken of, which still exists


class Hint:
    # a plain class: dataclasses costs ~17 ms of imports, and the agent's monitor loads this
    __slots__ = ("key", "args")

    def __init__(self, key: str, args: dict | None = None):
        self.key, self.args = key, args or {}

    def __repr__(self) -> str:
        return f"Hint({self.key!r}, {self.args!r})"


NEUTRAL = {
    CEPH_CONF: "Point rbdvm at the cluster's ceph.conf",
    CEPH_ID: "Install /etc/ceph/ceph.client.{client_id}.keyring, or choose another Ceph user",
    POOL: "Choose the pool the VMs are in",
    REPLACE_VM: "Choose another name, or ask for the existing VM to be replaced "
                "(its disks and snapshots are deleted)",
    LIVE_MIGRATION: "Allow live migration in its settings (rbdvm set {vm}), or move it stopped",
    FORCE_REMOVE: "Disable it first (rbdvm disable {vm}), or ask remove to disable it",
    PURGE_WHICH: "Say which snapshots: all, the N oldest, or those before a date",
    ALLOW_RESTART: "Allow the restart, or make the change while the VM is stopped",
    GIVE_BASE: "Give it a base definition first (rbdvm edit {vm})",
    TRUST: "Review it and accept it, as root on a cluster node: rbdvm trust {vm}",
    DRAIN_UNTRUSTED: "Review and accept them first (rbdvm trust {vms}), or drain anyway: they stop",
    RESTORE_FOREIGN: "If you know where backup {backup} comes from (another cluster, a replaced signing key), "
                     "restore it vouching for it: its definition is still checked against the device policy",
    RESTORE_OVER: "Restore it under another name, or disable VM {vm} and ask for it to be replaced "
                  "(its disks and snapshots are deleted)",
    TRUST_SNAPSHOT: "Review the definition recorded with snapshot {snap} and accept it, as root on a "
                    "cluster node (rbdvm trust {vm}, naming the snapshot)",
}


def render(hint: Hint, table: dict) -> str:
    """The hint in a front end's words (`table`), else in the neutral ones."""
    text = table.get(hint.key) or NEUTRAL[hint.key]
    return text.format(**hint.args)
