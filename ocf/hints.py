"""The agent's wording of the fixes helpers suggest (rbdvm.helpers.core.hints): the resource's
parameters, as an exit reason in crm_mon shows them."""

from rbdvm.helpers.core import hints
from rbdvm.helpers.core.errors import RbdvmError

TABLE = {
    hints.CEPH_CONF: "Set the resource's ceph_conf parameter to the cluster's ceph.conf",
    hints.CEPH_ID: "Install /etc/ceph/ceph.client.{client_id}.keyring on this node, or set the "
                   "resource's ceph_id parameter",
    hints.POOL: "Set the resource's pool parameter to the VM's pool",
}


def reason(exc: RbdvmError) -> str:
    """A helper's error as an exit reason."""
    return exc.message_for(TABLE)
