"""Creating a VM: its disk files imported into new images, its definition built and signed.

It runs under the VM's lease as steps that each check what is already there: re-running an
interrupted create finishes it (checkpoints create:images, create:group, create:nvram,
create:imported, create:commit); nothing that exists correctly is deleted and made again. An existing VM is
replaced only when asked (`force`)."""

from ..ceph import diskimage, groups, images, nvram, trust, vmstore
from ..ceph.lease import Lease
from ..ceph.vmstore import where
from ..core import defaults, domainxml, hints, names, timeouts, vmschema
from ..core.errors import Conflict, RbdvmError
from ..core.faults import checkpoint
from ..core.hints import Hint
from ..core.vmschema import VmState
from . import definition
from .env import Env
from .removal import remove_record


def create(env: Env, name: str, image, base_xml: str, *, data_images=(),
           metadata=None, settings=None, force=False, progress=None, uefi_variables=None) -> dict:
    """Import the disk files into a new VM `name` and store its definition.

    `image`, `data_images`: file paths (inspected here), or diskimage.DiskFile sources
    already inspected (adopt's RBD images). `uefi_variables`: (origin, content) of a UEFI
    guest's store, instead of the firmware's template (adopt's host file).
    progress(disk, fraction) follows each import.
    """
    session = env.session
    names.check_new_vm_name(name)
    user_md = vmschema.check_user_metadata(metadata)
    settings = dict(settings or {})
    stored = vmschema.encode(settings)
    bus = settings.get("disk_bus") or defaults.DISK_BUS
    files = [_inspected(image)] + [_inspected(p) for p in data_images]
    base_uuid = domainxml.uuid_of(base_xml, "the base XML")
    key = trust.signing_key(session)     # a node that cannot sign makes nothing
    trust.require_policy(session, name, base_xml, f"cannot create VM {name}")
    # the template is chosen even when the variables come from elsewhere (adopt's host
    # file): a definition no firmware on this node fits is refused before anything is made
    variables = definition.uefi_variables(env, base_xml)
    if variables and uefi_variables:
        variables = uefi_variables
    session.ensure_namespace()
    with Lease(session, name, "create") as lease:
        disks = names.disk_names(name, len(data_images))
        resuming = _claim(env, name, disks, lease, force, base_uuid)
        fresh = _make_images(env, name, disks, [f.virtual_size for f in files], lease, resuming)
        checkpoint("create:images")
        groups.ensure_group(session, name, disks)
        checkpoint("create:group")
        if variables:
            lease.check()
            nvram.ensure_store(session, name, variables[1], variables[0])
            checkpoint("create:nvram")
        for disk, f in zip(disks, files):
            import_disk(env, name, disk, f, lease, fresh=disk in fresh, progress=progress)
        xml = definition.build(env, base_xml, name, disks, bus)
        signed = trust.new_definition(session, name, xml, base_xml, f"cannot create VM {name}", key)
        values = {vmschema.VM_NAME: name, vmschema.DISK_BUS: bus, vmschema.CREATED: env.now().isoformat(),
                  **stored, **user_md, **signed}
        values.update(trust.signed_settings(session, name, values, key))
        if data_images:
            values[vmschema.ADDITIONAL_DISKS] = str(len(data_images))
        for disk in disks[1:]:
            vmstore.set_metadata(session, disk, {}, remove=[vmschema.IMPORTED])
        checkpoint("create:commit")
        lease.check()
        # the commit point: _state goes last; settings nobody gave are not left to be signed
        vmstore.set_metadata(session, disks[0], values, remove=[vmschema.IMPORTED, vmschema.STATE] + [
            k for k in vmschema.SIGNED_SETTINGS if k not in values])
    return {"name": name, "disks": disks, "uuid": domainxml.uuid_of(xml),
            "formats": [f.format for f in files], "nvram": names.nvram_image(name) if variables else None}


def _inspected(source) -> diskimage.DiskFile:
    return source if isinstance(source, diskimage.DiskFile) else diskimage.inspect(source)


def _claim(env: Env, name: str, disks, lease, force: bool, base_uuid) -> bool:
    """Make sure `name` may be created (an existing VM replaced only with `force`); True if
    an interrupted create or clone of it is being finished."""
    session = env.session
    rec = vmstore.record(session, name)
    if rec.state == VmState.COMPLETE:
        if not force:
            raise Conflict("VM already exists", f"VM {name} exists in {where(session)}",
                           hint=Hint(hints.REPLACE_VM), code="VM_EXISTS", details={"vm": name})
        remove_record(env, rec, lease)
    vmstore.refuse_unusable(rec)
    if base_uuid:
        definition.check_uuid_free(env, base_uuid, name)
    if rec.state == VmState.CREATING:
        return True
    vmstore.refuse_taken(session, name, disks)
    vmstore.mark_making(session, name, True)
    return False


def _make_images(env: Env, name: str, disks, sizes, lease, resuming: bool) -> set:
    """The VM's images at their sizes; returns those made now (the others a previous run
    made). The system disk is marked as being created the moment it exists."""
    session = env.session
    fresh = set()
    for disk, size in zip(disks, sizes):
        lease.check()
        if images.ensure_image(session, disk, size):
            fresh.add(disk)
        if disk == disks[0]:
            vmstore.set_metadata(session, disk, {vmschema.STATE: VmState.CREATING, vmschema.VM_NAME: name})
            vmstore.mark_making(session, name, False)
    return fresh


def import_disk(env: Env, name: str, disk: str, f, lease, fresh: bool, progress) -> None:
    """One disk file into its image, unless a previous run imported exactly that file."""
    session = env.session
    lease.check()
    if vmstore.read_metadata(session, disk).get(vmschema.IMPORTED) == f.fingerprint:
        return
    if not fresh:
        # made by the interrupted run; whoever opened it since would lose their writes. The
        # interrupted run's own import may still show as open until Ceph drops its watch
        vmstore.refuse_if_open(session, name, [disk], "overwrite the disks of",
                               wait=timeouts.LINGERING_WATCH, check=lease.check)
        images.zero(session, disk)   # an import must start on an all-zero image
    lease.check()
    try:
        env.import_disk(f, session.target, disk, adopt=lease.adopt,
                              progress=(lambda x: progress(disk, x)) if progress else None)
    except RbdvmError:
        lease.check()      # qemu-img was killed because the lease was lost: say that
        raise
    lease.check()
    vmstore.set_metadata(session, disk, {vmschema.IMPORTED: f.fingerprint})
    checkpoint("create:imported")
