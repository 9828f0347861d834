"""rbdvm create | clone | remove | list | info."""

from pathlib import Path

import click

from rbdvm.helpers.core import names
from rbdvm.helpers.core.errors import UsageError
from rbdvm.helpers.core.vmschema import VmState
from rbdvm.helpers.ops import adoption, cloning, creation, inventory, lifecycle

from .cluster import cluster_line, colocation_text
from .options import (
    Progress,
    ceph_command,
    ceph_env,
    emit,
    human_bytes,
    in_session,
    parse_pairs,
    settings_options,
    settings_values,
    table,
)


def read_xml(path):
    if path is None:
        return None
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        raise UsageError(f"XML file {path} does not exist", "", "Check the path") from None
    except UnicodeDecodeError:
        raise UsageError(f"XML file {path} is not UTF-8 text", "", "Give the libvirt domain XML") from None
    except OSError as exc:
        raise UsageError(f"cannot read XML file {path}", exc.strerror or str(exc)) from None


def disabled_option(func):
    return click.option("--disabled", is_flag=True,
                        help="Leave the new VM disabled: not under Pacemaker, not started.")(func)


def report_made(as_json, session, result, disabled, made, text):
    """Print what create/clone/adopt/restore made, then enable the VM unless --disabled: the storage result
    is shown even if starting fails."""
    if not as_json:
        emit(False, result, text)
    if not disabled:
        result["cluster"] = lifecycle.enable_new(session, result["name"], made)
        if not as_json:
            emit(False, result["cluster"], cluster_line)
    if as_json:
        emit(True, result, text)


@click.command()
@click.argument("name")
@click.option("--image", "-i", required=True, metavar="FILE",
              help="System disk: a qcow2 or raw file (the format is read from the content).")
@click.option("--xml", "-x", "xml_file", required=True, metavar="FILE",
              help="Base libvirt domain XML; rbdvm adds the RBD disks, a UUID if it has none, MACs.")
@click.option("--data-disk", "-d", multiple=True, metavar="FILE",
              help="An additional disk (repeatable): data_NAME_0, data_NAME_1, ...")
@click.option("--metadata", "-m", multiple=True, metavar="KEY=VALUE", help="User metadata (repeatable).")
@click.option("--force", is_flag=True, help="Replace an existing VM of this name (its data is lost).")
@disabled_option
@settings_options
@ceph_command
def create(name, image, xml_file, data_disk, metadata, force, disabled, target, as_json, **kwargs):
    """Create VM NAME from disk image files and a base libvirt XML, then enable and start it.

    The disks are imported into RBD (no zero block is written), grouped in the RBD group
    NAME, and the VM's libvirt XML is stored in the metadata of system_NAME. Then the VM is
    put under Pacemaker and started (as `rbdvm enable` does), unless --disabled.
    Interrupted, the same command resumes where it stopped.
    """
    names.check_new_vm_name(name)   # before touching any file
    settings = settings_values(kwargs)
    base = read_xml(xml_file)
    progress = Progress(not as_json)
    with ceph_env(target) as s:
        try:
            result = creation.create(s, name, image, base, data_images=data_disk,
                                      metadata=parse_pairs(metadata, "--metadata"),
                                      settings=settings, force=force, progress=progress)
        finally:
            progress.close()
        report_made(as_json, s, result, disabled, "created",
                lambda r: f"VM {r['name']} created: disks {', '.join(r['disks'])} "
                          f"(from {', '.join(r['formats'])}), UUID {r['uuid']}")


@click.command()
@click.argument("domain")
@click.option("--as", "name", metavar="NAME",
              help="The VM's name [default: the domain's]; under another name it gets a new UUID and MACs.")
@click.option("--stop", is_flag=True, help="Shut the domain down first if it runs (else a running domain is refused).")
@click.option("--enable", is_flag=True, help="Put the new VM under Pacemaker and start it (as rbdvm enable).")
@click.option("--metadata", "-m", multiple=True, metavar="KEY=VALUE", help="User metadata (repeatable).")
@settings_options
@ceph_command
def adopt(domain, name, stop, enable, metadata, target, as_json, **kwargs):
    """Make the libvirt domain DOMAIN defined on this node an rbdvm VM.

    Its disks (qcow2 or raw files, or raw RBD images of the VMs' pool) are imported into
    the VM's images through the same checks as create (a file with a backing or data file
    is refused), in boot order: the boot disk becomes system_NAME. The definition keeps the
    domain's identity (name, UUID, MACs) and UEFI variables; removable media are left out
    (reported). The domain and its files are left untouched: remove them (virsh undefine)
    once the VM runs. A running domain is refused unless --stop. Interrupted, the same
    command resumes; run again once done, it says so.
    """
    settings = settings_values(kwargs)
    progress = Progress(not as_json)
    with ceph_env(target) as s:
        try:
            result = adoption.adopt(s, domain, name=name, stop=stop, settings=settings,
                                    metadata=parse_pairs(metadata, "--metadata"), progress=progress)
        finally:
            progress.close()
        report_made(as_json, s, result, not enable, "adopted",
                lambda r: (f"domain {r['domain']} adopted as VM {r['name']}: disks {', '.join(r['disks'])}"
                           if r["changed"] else f"domain {r['domain']} is VM {r['name']} already")
                + (f"; UEFI variables in {r['nvram']}" if r.get("nvram") else "")
                + (f"\nLeft out: {', '.join(r['dropped'])}" if r["dropped"] else "")
                + f"\nThe domain and its files are untouched: virsh undefine {r['domain']} once the VM runs")


@click.command()
@click.argument("src")
@click.argument("dst")
@click.option("--full", is_flag=True, help="An independent deep copy instead of a copy-on-write clone.")
@click.option("--xml", "-x", "xml_file", metavar="FILE", help="Base XML for the clone [default: the source's].")
@click.option("--metadata", "-m", multiple=True, metavar="KEY=VALUE",
              help="User metadata overriding the source's (repeatable).")
@disabled_option
@settings_options
@ceph_command
def clone(src, dst, full, xml_file, metadata, disabled, target, as_json, **kwargs):
    """Clone VM SRC into a new VM DST (SRC may keep running), then enable and start DST.

    Copy-on-write by default: constant time whatever the disk size, DST's disks share
    SRC's data until written (SRC cannot be removed while such clones exist). DST gets a
    new UUID and new MAC addresses, and a copy of SRC's metadata and settings.
    """
    names.check_new_vm_name(dst)
    settings = settings_values(kwargs)
    with ceph_env(target) as s:
        result = cloning.clone(s, src, dst, full=full, base_xml=read_xml(xml_file),
                                 metadata=parse_pairs(metadata, "--metadata"),
                                 settings=settings)
        report_made(as_json, s, result, disabled, "cloned",
                lambda r: f"VM {r['name']} cloned from {r['source']} ({r['mode']}): "
                          f"disks {', '.join(r['disks'])}, UUID {r['uuid']}")


@click.command()
@click.argument("name")
@click.option("--force", is_flag=True, help="Disable the VM first if it is enabled (stopping it).")
@ceph_command
def remove(name, force, target, as_json):
    """Remove VM NAME: its disks, snapshots and group.

    Refused while the VM is enabled in the cluster (unless --force, which disables it
    first), while any disk is open, or while copy-on-write clones depend on it.
    Interrupted, run it again.
    """
    emit(as_json, in_session(target, lifecycle.remove, name, force=force),
         lambda r: f"VM {r['name']} removed ({', '.join(r['removed_disks']) or 'no disks'})")


@click.command("list")
@ceph_command
def list_(target, as_json):
    """List the VMs of the pool (and namespace): cluster status, node, storage state.

    REPLICAS is the pool's data: ok, degraded (some of its placement groups lack a copy or
    cannot serve I/O: an OSD is down; the VMs run on, and Ceph recovers when it is back) or
    unknown. One Ceph listing, one health query and one crm_mon call, whatever the number
    of VMs."""
    with ceph_env(target) as s:
        result = lifecycle.list_status(s)
    emit(as_json, result, lambda r: table(r, [("NAME", "name"), ("STATUS", "status"), ("NODE", "node"),
                                              ("STORAGE", "state"), ("REPLICAS", "storage_health"),
                                              ("DISKS", "disks"), ("REASON", "reason")]) if r else "no VMs")


@click.command()
@click.argument("name")
@ceph_command
def info(name, target, as_json):
    """Show VM NAME: disks, settings, metadata, snapshots, clones."""
    with ceph_env(target) as s:
        result = inventory.info(s, name)

    def text(r):
        where = f" in pool {r['pool']}" + (f", namespace {r['namespace']}" if r['namespace'] else "")
        if r["state"] == VmState.BROKEN:
            return [f"VM {r['name']} (broken){where}: {r['why']}",
                    "  disks: " + ", ".join(d["name"] for d in r["disks"]),
                    f"  `rbdvm remove {r['name']}` deletes what is left of it"]
        lines = [f"VM {r['name']} ({r['state']}){where}",
                 f"  uuid: {r['uuid'] or '-'}", f"  created: {r['created'] or '-'}",
                 f"  replicas: {r['storage_health']}" + (" (an OSD of the pool is down or recovering: the VM "
                                                         "runs on; Ceph recovers when it is back)"
                                                         if r["storage_health"] == "degraded" else ""),
                 f"  trust: {r['trust'] or '-'}" + (f" ({r['untrusted_because']}; review and accept it: "
                                                     f"rbdvm trust {r['name']})" if r.get("untrusted_because") else "")]
        if r["cloned_from"]:
            lines.append(f"  cloned from: {r['cloned_from']['vm']} ({r['cloned_from']['mode']})")
        lines.append("  disks:")
        lines += ["    " + row for row in table(r["disks"], [
            ("NAME", "name"), ("SIZE", lambda d: human_bytes(d["size"])),
            ("USED", lambda d: human_bytes(d["used"])), ("PARENT", "parent"),
            ("OPEN BY", lambda d: ", ".join(d["open_by"]) or "-")])]
        if r["nvram"]:
            lines.append(f"  UEFI variables: image {r['nvram']} (snapshotted, rolled back and cloned with the disks)")
        if r["settings"]:
            lines.append("  settings: " + ", ".join(f"{k}={v}" for k, v in r["settings"].items()))
        if r["colocations"]:
            lines.append(f"  colocations: {colocation_text(r['colocations'])}")
        if r["metadata"]:
            lines.append("  metadata: " + ", ".join(f"{k}={v}" for k, v in r["metadata"].items()))
        lines.append("  snapshots: " + (", ".join(s["name"] for s in r["snapshots"]) or "none"))
        if r["clones"]:
            lines.append("  clones: " + ", ".join(r["clones"]))
        return lines
    emit(as_json, result, text)
