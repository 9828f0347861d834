"""A VM's metadata: the key/value pairs on its system disk."""

from ..ceph import vmstore
from ..ceph.lease import Lease
from ..core import names, vmschema
from ..core.errors import NotFound
from .env import Env


def list_metadata(env: Env, vm: str, include_reserved: bool = False) -> dict:
    session = env.session
    rec = vmstore.require_complete(session, vm)
    return {k: v for k, v in sorted(rec.metadata.items()) if include_reserved or vmschema.is_user_key(k)}


def get_metadata(env: Env, vm: str, key: str) -> str:
    session = env.session
    rec = vmstore.require_complete(session, vm)
    if key not in rec.metadata:
        raise NotFound("No metadata for image", f"{names.system_disk(vm)} has no key {key!r}",
                       f"List the keys with `rbdvm metadata list {vm}`",
                       code="KEY_NOT_FOUND", details={"vm": vm, "key": key})
    return rec.metadata[key]


def set_metadata(env: Env, vm: str, key: str, value: str) -> None:
    session = env.session
    vmschema.check_user_key(key)
    with Lease(session, vm, f"metadata set {key}"):
        vmstore.require_complete(session, vm)
        vmstore.set_metadata(session, names.system_disk(vm), {key: value})
