"""Names of VMs, snapshots and metadata keys, and the RBD names a VM is laid out with.

The layout is SEAPATH vm_manager's, so VMs it created are managed by rbdvm unchanged:
group <vm>; system disk system_<vm>; additional disks data_<vm>_<i>. rbdvm adds one image of
its own to a UEFI VM's group: its firmware variable store nvram_<vm>.
"""

import re

from .errors import UsageError

_NAME = re.compile(r"[A-Za-z0-9]+")
SYSTEM_PREFIX = "system_"
DATA_PREFIX = "data_"
NVRAM_PREFIX = "nvram_"
# per-image snapshots rbdvm makes for its own use carry this prefix: a user snapshot name
# (letters and digits only) can never collide with one
INTERNAL_SNAP_PREFIX = "rbdvm-"


def is_name(name) -> bool:
    """The one name rule of VMs, snapshots and metadata keys: ASCII letters and digits."""
    return isinstance(name, str) and bool(_NAME.fullmatch(name))


def check_name(name: str, what: str = "name") -> str:
    """Letters and digits only, as vm_manager demands (its error message, kept verbatim)."""
    if not is_name(name):
        raise UsageError("Parameter must not contain spaces or special chars",
                         f"{what} {name!r} is not letters and digits only",
                         f"Choose a {what} made of letters and digits",
                         code="INVALID_NAME", details={"name": name, "kind": what})
    return name


# Pacemaker's ids are XML names: a letter or '_' first (a VM's name is its resource id)
_CIB_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def is_cib_id(text: str) -> bool:
    return isinstance(text, str) and bool(_CIB_ID.fullmatch(text))


def check_new_vm_name(name: str) -> str:
    """The name of a VM about to be made: letters and digits, and usable as its Pacemaker
    resource id (vm_manager's names that start with a digit are still managed, not enabled)."""
    check_name(name, "VM name")
    if not is_cib_id(name):
        raise UsageError(f"VM name {name!r} starts with a digit",
                         "the VM's name is its Pacemaker resource id, an XML name, which "
                         "must start with a letter", "Choose a name that starts with a letter",
                         code="INVALID_NAME", details={"name": name, "kind": "VM name"})
    return name


def system_disk(vm: str) -> str:
    return SYSTEM_PREFIX + vm


def data_disk(vm: str, index: int) -> str:
    return f"{DATA_PREFIX}{vm}_{index}"


def nvram_image(vm: str) -> str:
    """The image holding a UEFI VM's firmware variables (a member of its group, not a disk)."""
    return NVRAM_PREFIX + vm


def is_vm_image(vm: str, image: str) -> bool:
    """One of VM `vm`'s disks or its variable store: the images rbdvm may delete for it."""
    return is_vm_disk(vm, image) or image == nvram_image(vm)


def parse_disk(image: str):
    """(vm, index) of a disk name rbdvm lays out: index None for the system disk
    (system_VM), N for the data disk data_VM_N; None for any other name. The one reading of
    disk names."""
    if image.startswith(SYSTEM_PREFIX) and is_name(image[len(SYSTEM_PREFIX):]):
        return image[len(SYSTEM_PREFIX):], None
    if image.startswith(DATA_PREFIX):
        vm, sep, index = image[len(DATA_PREFIX):].rpartition("_")
        if sep and is_name(vm) and index.isdigit():
            return vm, int(index)
    return None


def is_vm_disk(vm: str, image: str) -> bool:
    """Whether `image` has one of the names VM `vm`'s disks are laid out with: rbdvm never
    deletes or overwrites an image outside them."""
    parsed = parse_disk(image)
    return parsed is not None and parsed[0] == vm


def vm_of_disk(image: str) -> str:
    """The VM a disk name belongs to (the name itself if it is not one of rbdvm's)."""
    parsed = parse_disk(image)
    return parsed[0] if parsed else image


def disk_names(vm: str, data_disks: int) -> list:
    return [system_disk(vm)] + [data_disk(vm, i) for i in range(data_disks)]


# the per-disk snapshot a backup is read from and the next incremental backup starts from:
# listed with the VM's snapshots (not internal), never a name a user can give (the '-')
BACKUP_SNAP_PREFIX = "backup-"


def backup_snapshot(backup_id: str) -> str:
    return BACKUP_SNAP_PREFIX + backup_id


def is_backup_snapshot(snap: str) -> bool:
    return snap.startswith(BACKUP_SNAP_PREFIX)


def clone_base_snapshot(dst_vm: str) -> str:
    """The per-disk snapshot of a source VM that a copy-on-write clone dst_vm hangs on."""
    return f"{INTERNAL_SNAP_PREFIX}clone-{dst_vm}"


def lease_object(vm: str) -> str:
    return f"rbdvm_lease.{vm}"
