"""The Ceph users an operator makes for rbdvm (helpers/ceph/users.py), as rows to print."""

from ..ceph import users


def listing(pool: str) -> list:
    """[{user, purpose, caps}] of rbdvm's Ceph users, their caps for the VMs' `pool`."""
    return [{"user": f"client.{u.client_id}", "purpose": u.purpose, "caps": users.caps(u, pool)} for u in users.USERS]
