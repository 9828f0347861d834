"""Reading what exists: every VM of a pool/namespace (one listing and one bulk read of the
system disks' headers), and one VM in detail."""

from ..ceph import images, pghealth, trust, vmstore
from ..core import domainxml, names, vmschema
from ..core.vmschema import VmState
from . import snapshots
from .env import Env


def list_vms(env: Env) -> list:
    """Every VM in the pool/namespace, complete or not: one listing of groups and images and
    one bulk read of the system disks' headers."""
    session = env.session
    out = []
    key = trust.key_here(env.session)
    records = vmstore.records(session)
    health = pghealth.pool_health(session) if records else pghealth.OK
    for rec in records:
        trusted, _ = _trust(env, rec, key)
        out.append({"name": rec.name, "state": trust.UNTRUSTED if trusted == trust.UNTRUSTED else rec.state,
                    "disks": len(rec.disks), "uuid": domainxml.stored_uuid(rec.metadata.get(vmschema.XML)),
                    "trust": trusted, "storage_health": health})
    return out


def _trust(env: Env, rec, key) -> tuple:
    """(signed | untrusted | unknown, why) of a complete VM; ("", "") for any other."""
    session = env.session
    if rec.state != VmState.COMPLETE:
        return "", ""
    return trust.state(session, rec.name, rec.metadata, key)


def info(env: Env, name: str) -> dict:
    session = env.session
    names.check_name(name, "VM name")
    rec = vmstore.record(session, name)
    if rec.state == VmState.ABSENT:
        raise vmstore.no_such_vm(session, name)
    vmstore.refuse_foreign(rec)
    if rec.state == VmState.BROKEN:
        return {"name": name, "state": rec.state, "pool": session.target.pool,
                "namespace": session.target.namespace, "why": rec.why,
                "disks": [{"name": d} for d in rec.disks]}
    disks = [images.disk_info(session, d) for d in rec.disks]
    md = rec.metadata
    trusted, why = _trust(env, rec, trust.key_here(env.session))
    return {
        "name": name, "state": trust.UNTRUSTED if trusted == trust.UNTRUSTED else rec.state,
        "trust": trusted, **({"untrusted_because": why} if trusted == trust.UNTRUSTED else {}),
        "pool": session.target.pool,
        "namespace": session.target.namespace,
        "uuid": domainxml.stored_uuid(md.get(vmschema.XML)),
        "created": vmschema.created(md),
        "cloned_from": vmschema.cloned_from(md),
        "disks": disks,
        "nvram": rec.nvram,      # the UEFI variable store, None for a BIOS guest
        "storage_health": pghealth.pool_health(session),
        "settings": vmschema.decode(md),
        "colocations": vmschema.colocations(md),
        "metadata": {k: v for k, v in sorted(md.items()) if vmschema.is_user_key(k)},
        "snapshots": snapshots.list_snapshots(env, name) if rec.state == VmState.COMPLETE else [],
        "clones": images.dependent_clones(session, rec.disks),
    }
