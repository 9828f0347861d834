"""The UEFI firmware a domain gets on this node, chosen the way libvirt's firmware
autoselection chooses it (QEMU's firmware descriptors, first match by file name), so the
variable store rbdvm makes in Ceph starts from the template libvirt would have copied.

Every node of a cluster must have the same firmware packages (a live migration needs that
already): the store is made once, on the node that creates the VM.
"""

import fnmatch
import json
import os
from dataclasses import dataclass

from ..core.errors import UsageError

# libvirt's search order: a file in an earlier directory hides one of the same name later
DESCRIPTOR_DIRS = ("/etc/qemu/firmware", "/usr/share/qemu/firmware")
# the machine aliases libvirt resolves before matching a descriptor's globs
_MACHINE_ALIASES = {"q35": "pc-q35-0", "pc": "pc-i440fx-0"}
# the features a definition may turn on or off, as descriptors name them
_FEATURES = ("secure-boot", "enrolled-keys")


@dataclass(frozen=True)
class Firmware:
    descriptor: str        # the descriptor file that matched
    code: str              # the read-only firmware code
    template: str          # the variables a new store starts from


def descriptors(dirs=DESCRIPTOR_DIRS) -> list:
    """[(path, parsed)] in libvirt's order: by file name, earlier directories winning."""
    chosen: dict = {}
    for d in dirs:
        try:
            entries = sorted(os.listdir(d))
        except OSError:
            continue
        for entry in entries:
            if entry.endswith(".json") and entry not in chosen:
                chosen[entry] = os.path.join(d, entry)
    out = []
    for entry in sorted(chosen):
        try:
            with open(chosen[entry]) as f:
                out.append((chosen[entry], json.load(f)))
        except (OSError, ValueError):
            continue      # libvirt skips an unreadable descriptor too
    return out


def choose(request: dict, found) -> Firmware | None:
    """The first descriptor that fits `request` (domainxml.firmware_request) or None."""
    machine = _MACHINE_ALIASES.get(request["machine"], request["machine"])
    for path, d in found:
        mapping = d.get("mapping") or {}
        if "uefi" not in (d.get("interface-types") or []) or mapping.get("device") != "flash":
            continue
        if mapping.get("mode", "split") != "split" or "nvram-template" not in mapping:
            continue
        code = (mapping.get("executable") or {}).get("filename")
        template = (mapping.get("nvram-template") or {}).get("filename")
        if not code or not template:
            continue
        if request["loader"] and request["loader"] != code:
            continue
        if not any(t.get("architecture") == request["arch"]
                   and any(fnmatch.fnmatchcase(machine, m) for m in t.get("machines", []))
                   for t in d.get("targets") or []):
            continue
        features = set(d.get("features") or [])
        if any((name in features) != wanted for name, wanted in request["features"].items() if name in _FEATURES):
            continue
        return Firmware(path, code, request["template"] or template)
    return None


def template_for(request: dict, dirs=DESCRIPTOR_DIRS) -> Firmware:
    """The firmware this node's libvirt would give a domain asking `request`."""
    fw = choose(request, descriptors(dirs))
    if fw is None:
        wanted = ", ".join(f"{n} {'on' if v else 'off'}" for n, v in request["features"].items()) or "no features"
        raise UsageError("no UEFI firmware on this node fits the definition",
                         f"none of the firmware descriptors in {', '.join(dirs)} is UEFI flash firmware for "
                         f"{request['arch']} machine {request['machine']} with {wanted}"
                         + (f" and code {request['loader']}" if request["loader"] else ""),
                         "Install the firmware (Debian: ovmf) or change <os> in the definition",
                         code="FIRMWARE_NOT_FOUND",
                         details={"machine": request["machine"], "features": request["features"]})
    return fw


# a variable store is a few hundred KiB; anything much larger is not one
_MAX_STORE = 64 << 20


def read_store_file(path: str) -> bytes | None:
    """The content of a host file holding a guest's UEFI variables (libvirt's per-node
    store), None if there is none. Never follows a link; refuses what cannot be a store."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read the UEFI variables in {path}", exc.strerror or str(exc),
                         code="FIRMWARE_NOT_FOUND", details={"path": path}) from None
    with os.fdopen(fd, "rb") as f:
        content = f.read(_MAX_STORE + 1)
    if not 0 < len(content) <= _MAX_STORE:
        raise UsageError(f"{path} is not a UEFI variable store", f"{len(content)} bytes",
                         code="FIRMWARE_NOT_FOUND", details={"path": path})
    return content


def variables_for(request: dict, dirs=DESCRIPTOR_DIRS) -> tuple:
    """(origin, content): the variables a new store of a domain asking `request` starts with."""
    fw = template_for(request, dirs)
    return f"template {fw.template}", read_template(fw)


def read_template(fw: Firmware) -> bytes:
    try:
        with open(fw.template, "rb") as f:
            return f.read()
    except OSError as exc:
        raise UsageError(f"cannot read the UEFI variables template {fw.template}", exc.strerror or str(exc),
                         "Reinstall the firmware package (Debian: ovmf)", code="FIRMWARE_NOT_FOUND",
                         details={"template": fw.template}) from None
