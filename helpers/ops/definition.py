"""A VM's libvirt definition as rbdvm stores it: built from the operator's base for the
VM's disks (the same UUID and MACs when built again), checked against the device policy and
signed; and the rule that no two VMs share a UUID. Create, clone, set, edit and disk
changes all build it here."""

from ..ceph import nvram, rbdbulk, trust, vmstore
from ..ceph.monitors import monitor_hosts
from ..core import defaults, domainxml, hints, names, vmschema
from ..core.errors import Conflict
from ..core.hints import Hint
from .env import Env


def build(env: Env, base_xml: str, vm: str, disks, bus: str, new_identity: bool = False) -> str:
    """The definition for `disks`; a UEFI guest's variables in its store once the store is
    complete (until then the agent moves them there at the next start)."""
    session = env.session
    t = session.target
    store = names.nvram_image(vm) if nvram.is_complete(session, vm) else None
    return domainxml.build(base_xml, vm=vm, images=disks, pool=t.pool, namespace=t.namespace,
                           monitors=monitor_hosts(session), client_id=t.client_id, bus=bus,
                           new_identity=new_identity, nvram=store)


def uefi_variables(env: Env, base_xml: str):
    """(origin, content) of a new variable store if `base_xml` boots UEFI, else None."""
    root = domainxml.parse(base_xml, "the base XML")
    return env.uefi_variables(domainxml.firmware_request(root)) if domainxml.is_uefi(root) else None


def rebuild_definition(env: Env, vm: str, metadata: dict, disks, *, bus: str | None = None,
                       base_xml: str | None = None) -> dict:
    """The VM's definition built again from its base (or a new one) for `disks`, keeping its
    UUID and MAC addresses unless the base sets them; checked against the device policy and
    signed: the metadata to write (`xml`, `_base_xml`, their signature)."""
    session = env.session
    if base_xml is None:
        # built again from the stored base: only one this cluster signed
        trust.require_definition(session, vm, metadata, f"cannot build the definition of VM {vm} again")
    base_xml = base_xml or metadata.get(vmschema.BASE_XML)
    if not base_xml:
        raise Conflict(f"VM {vm} has no base definition stored",
                       "another tool made it, and rbdvm builds the definition again from its base",
                       hint=Hint(hints.GIVE_BASE, {"vm": vm}))
    base = domainxml.keep_identity(base_xml, metadata.get(vmschema.XML))
    xml = build(env, base, vm, disks, bus or metadata.get(vmschema.DISK_BUS) or defaults.DISK_BUS)
    return trust.new_definition(session, vm, xml, base_xml, f"cannot change the definition of VM {vm}")


def check_uuid_free(env: Env, uid: str, name: str) -> None:
    """Conflict if another VM's stored definition has UUID `uid` (one bulk read of the
    system disks' headers)."""
    session = env.session
    others = [vm for vm in vmstore.list_groups(session) if vm != name]
    for other, header in rbdbulk.system_headers(session, others).items():
        if domainxml.stored_uuid(rbdbulk.metadata(header).get(vmschema.XML)) == uid:
            raise Conflict(f"UUID {uid} is already used by VM {other}",
                           "two VMs with one UUID cannot both run in a libvirt cluster",
                           "Remove <uuid> from the base XML (rbdvm generates one) or choose another")
