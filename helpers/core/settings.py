"""Where rbdvm finds its Ceph cluster when no flag says otherwise.

A hypervisor is set up once (ceph.conf + the client.rbdvm keyring in /etc/ceph) and every
command then works without Ceph flags. The environment can override the defaults, which
is how an operator points one shell at another cluster.
"""

import os
from dataclasses import dataclass

from . import defaults


@dataclass(frozen=True)
class CephTarget:
    """Which cluster, as which client, in which pool and namespace."""

    conf: str = defaults.CEPH_CONF
    client_id: str = defaults.CEPH_ID
    pool: str = defaults.POOL
    namespace: str = ""


def ceph_target_from_env(environ=os.environ, **overrides) -> CephTarget:
    """Defaults, then RBDVM_CEPH_CONF / RBDVM_CEPH_ID / RBDVM_POOL / RBDVM_NAMESPACE, then flags."""
    values = {
        "conf": environ.get("RBDVM_CEPH_CONF", defaults.CEPH_CONF),
        "client_id": environ.get("RBDVM_CEPH_ID", defaults.CEPH_ID),
        "pool": environ.get("RBDVM_POOL", defaults.POOL),
        "namespace": environ.get("RBDVM_NAMESPACE", ""),
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return CephTarget(**values)
