"""The CLI's wording of the fixes helpers suggest (rbdvm.helpers.core.hints): its flags and
environment variables."""

from rbdvm.helpers.core import hints

TABLE = {
    hints.CEPH_CONF: "Point --conf (or RBDVM_CEPH_CONF) at the cluster's ceph.conf",
    hints.CEPH_ID: "Install /etc/ceph/ceph.client.{client_id}.keyring, or pass --id",
    hints.POOL: "Choose the pool with --pool (or RBDVM_POOL)",
    hints.REPLACE_VM: "Choose another name, or add --force to replace it (its disks and snapshots are deleted)",
    hints.LIVE_MIGRATION: "Allow it (rbdvm set {vm} --live-migration), or move it stopped: add --cold",
    hints.FORCE_REMOVE: "Disable it first (rbdvm disable {vm}), or remove with --force, which does",
    hints.PURGE_WHICH: "Give exactly one of --all, --oldest N, --before DATE",
    hints.ALLOW_RESTART: "Add --restart to let Pacemaker restart it, or change it while the VM is stopped",
    hints.GIVE_BASE: "Give it one first: rbdvm edit {vm} --xml BASE.xml",
    hints.TRUST: "Review it and accept it, as root on a cluster node: rbdvm trust {vm}",
    hints.DRAIN_UNTRUSTED: "Accept them first: rbdvm trust {vms}, then drain again; or add --force: they stop",
    hints.RESTORE_FOREIGN: "If you know where backup {backup} comes from (another cluster, a replaced signing "
                           "key), add --accept-foreign: its definition is still checked against the device policy",
    hints.RESTORE_OVER: "Restore it under another name (--as NEW), or disable VM {vm} (rbdvm disable {vm}) "
                        "and add --force to replace it (its disks and snapshots are deleted)",
    hints.TRUST_SNAPSHOT: "Review it and accept it, as root on a cluster node: rbdvm trust {vm} --snapshot {snap}",
}
