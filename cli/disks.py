"""rbdvm disk add | resize | remove."""

import click

from rbdvm.helpers.core.sizes import parse_size
from rbdvm.helpers.ops import disks

from .options import Progress, emit, human_bytes, in_session, vm_command


@click.group()
def disk():
    """A VM's disks after it is created: add, grow, remove."""


def _guest(r) -> str:
    return f"the guest {r['guest']}" + (f" (on {r['node']})" if r.get("node") else "")


@vm_command(under=disk, name="add")
@click.option("--size", metavar="SIZE", help="An empty disk of this size (20G, 512M...).")
@click.option("--image", "-i", metavar="FILE", help="A disk imported from a qcow2 or raw file.")
def add(name, size, image, target, as_json):
    """Add a data disk data_NAME_<i> to VM NAME: empty (--size) or from a file (--image).

    The disk joins the VM's group and its definition (next to the others, same bus). On a VM
    running under Pacemaker it is also hot-plugged on the node that runs it, through the
    libvirt URI its migration uses. Interrupted, the same command finishes the same disk.
    """
    progress = Progress(not as_json)
    try:
        result = in_session(target, disks.add, name, size=parse_size(size) if size else None, image=image,
                            progress=progress)
    finally:
        progress.close()
    emit(as_json, result, lambda r: f"VM {name}: added {r['disk']} ({human_bytes(r['size'])}); {_guest(r)}")


@vm_command("disk_name", "size", under=disk, name="resize")
def resize(name, disk_name, size, target, as_json):
    """Grow DISK_NAME of VM NAME to SIZE (20G, 512M...). Shrinking is refused: it cuts off data.

    On a VM running under Pacemaker the guest sees the new size at once (libvirt's block
    resize on its node); otherwise at its next start.
    """
    r = in_session(target, disks.resize, name, disk_name, parse_size(size))
    emit(as_json, r, lambda r: f"VM {name}: {r['disk']} " + (
        f"grown from {human_bytes(r['before'])} to {human_bytes(r['size'])}" if r["changed"]
        else f"already {human_bytes(r['size'])}") + f"; {_guest(r)}")


@vm_command("disk_name", under=disk, name="remove")
def remove(name, disk_name, target, as_json):
    """Remove data disk DISK_NAME of VM NAME, which must not be running. Its data is lost.

    The system disk cannot be removed (remove the VM), nor a disk that snapshots or clones
    still need.
    """
    emit(as_json, in_session(target, disks.remove, name, disk_name), lambda r: f"VM {name}: removed {r['disk']}")
