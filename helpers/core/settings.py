"""Where rbdvm finds its Ceph cluster when no flag says otherwise.

A hypervisor is set up once (ceph.conf + the client.rbdvm keyring in /etc/ceph) and every
command then works without Ceph flags. The environment can override the defaults, which
is how an operator points one shell at another cluster.
"""

import os
from dataclasses import dataclass

DEFAULT_CEPH_CONF = "/etc/ceph/ceph.conf"
DEFAULT_CEPH_ID = "rbdvm"
DEFAULT_POOL = "rbd"


@dataclass(frozen=True)
class CephTarget:
    """Which cluster, as which client, in which pool and namespace."""

    conf: str = DEFAULT_CEPH_CONF
    client_id: str = DEFAULT_CEPH_ID
    pool: str = DEFAULT_POOL
    namespace: str = ""


def ceph_target_from_env(environ=os.environ, **overrides) -> CephTarget:
    """Defaults, then RBDVM_CEPH_CONF / RBDVM_CEPH_ID / RBDVM_POOL / RBDVM_NAMESPACE, then flags."""
    values = {
        "conf": environ.get("RBDVM_CEPH_CONF", DEFAULT_CEPH_CONF),
        "client_id": environ.get("RBDVM_CEPH_ID", DEFAULT_CEPH_ID),
        "pool": environ.get("RBDVM_POOL", DEFAULT_POOL),
        "namespace": environ.get("RBDVM_NAMESPACE", ""),
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return CephTarget(**values)
