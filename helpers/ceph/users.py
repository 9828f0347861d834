"""The Ceph users rbdvm's parts run as, and exactly the capabilities each needs: declared
once here, printed by `rbdvm ceph-users` for an operator (or the Debian package's README) to
run where the admin key is. Each user has what its commands need and nothing more."""

from dataclasses import dataclass

from ..core import defaults


@dataclass(frozen=True)
class User:
    client_id: str
    purpose: str
    mon: str
    osd: str = ""           # "{pool}" in it is the VMs' pool


USERS = (
    User(defaults.CEPH_ID, "every rbdvm command and the resource agent (the VMs' disks and definitions; "
         "QEMU's librbd through the libvirt secret)", "profile rbd", "profile rbd pool={pool}"),
    User(defaults.FENCE_CEPH_ID, "fence_rbdvm (blocklist a fenced node, hold the fence lock) and Ceph-aware "
         "failover (mark a fenced node's OSDs down)",
         'allow r, allow command "osd blocklist", allow command "osd down"',
         "allow rwx pool={pool} object_prefix rbdvm.fence"),
    User(defaults.HISTORY_CEPH_ID, "alert_rbdvm, Pacemaker's alert agent (add fences and lost nodes to the event "
         "history, read when a lost node was last seen); its keyring readable by the haclient group",
         "allow r", "allow rw pool={pool} object_prefix rbdvm.events., allow r pool={pool} object_prefix rbdvm.alive."),
    User(defaults.MAINTENANCE_CEPH_ID, "node drain --maintenance (set and clear noout on a host, nothing else)",
         'allow r, allow command "osd set-group" with flags=noout, allow command "osd unset-group" with flags=noout'),
)


def caps(user: User, pool: str) -> dict:
    """{service: cap} of `user` for the VMs' `pool`."""
    out = {"mon": user.mon}
    if user.osd:
        out["osd"] = user.osd.format(pool=pool)
    return out
