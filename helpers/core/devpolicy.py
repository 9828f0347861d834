"""The device policy: what a VM's definition may make QEMU (root on the node) touch.

A second wall behind the signatures (signing.py), for definitions root signs by mistake:
checked at create, clone, edit and trust, and again by the agent at every start. Refused
unless the node's policy file allows it: QEMU passthrough (any element of a libvirt
namespace, e.g. <qemu:commandline>), disks and filesystems backed by anything but the VM's
own RBD images, host devices, character devices backed by host files, sockets or devices,
interface scripts, firmware and kernel paths outside the firmware directories, and, as a
catch-all, any other absolute host path anywhere in the definition.

The policy file (/etc/rbdvm/policy.toml, root-owned, node-local, like the definitions'
secret) widens what a site needs: serial logs in a directory, vhost-user socket directories,
PCI devices to pass through, interface types, emulators. The built-in default admits
SEAPATH's standard guest (q35, UEFI, bridges, pty serials, guest-agent channels on libvirt's
own socket paths) and nothing dangerous.
"""

import os
import stat
from dataclasses import dataclass, field, fields

from . import names
from .errors import Problems, UsageError

POLICY_FILE = "/etc/rbdvm/policy.toml"


@dataclass(frozen=True)
class Policy:
    # directories a definition may name (a path is inside one, with no '..' on the way)
    firmware_dirs: tuple = ("/usr/share/OVMF", "/usr/share/ovmf", "/usr/share/AAVMF", "/usr/share/edk2",
                            "/usr/share/qemu", "/usr/share/seabios", "/usr/lib/ipxe")
    nvram_dirs: tuple = ("/var/lib/libvirt/qemu/nvram",)
    socket_dirs: tuple = ("/var/lib/libvirt/qemu/channel", "/run/libvirt/qemu/channel")
    file_dirs: tuple = ()              # character devices written to files, <log file=...>
    vhostuser_dirs: tuple = ()         # vhost-user sockets (interfaces and disks)
    # PCI devices a VM may own ("0000:03:00.0"), or "*" for any
    pci_devices: tuple = ()
    interface_types: tuple = ("bridge", "network", "direct", "ethernet", "user")
    emulators: tuple = ("/usr/bin/qemu-system-x86_64", "/usr/bin/qemu-system-aarch64", "/usr/bin/kvm",
                        "/usr/libexec/qemu-kvm")
    source: str = field(default="the built-in default policy", compare=False)


_LISTS = {f.name for f in fields(Policy) if f.name != "source"}


def default_text() -> str:
    """The policy file a node starts with: every key at its built-in value, commented out, so
    the file changes nothing until a site uncomments and widens a key."""
    lines = ["# rbdvm's device policy: what a VM's definition may make QEMU (root on this node)",
             "# touch. Every key below is shown at its built-in value; uncomment one to change it.",
             "# Keep this file root's alone (0644 root:root): rbdvm refuses one that others may edit.",
             "# See /usr/share/doc/rbdvm/security.md (docs/security.md in the source).", ""]
    default = Policy()
    for name in sorted(_LISTS, key=[f.name for f in fields(Policy)].index):
        lines.append(f"# {name} = [{', '.join(_toml_string(v) for v in getattr(default, name))}]")
    return "\n".join(lines) + "\n"


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def load(path: str = POLICY_FILE, owner: int = 0) -> Policy:
    """The node's policy: the built-in default when the file does not exist; refused (not
    ignored) when it cannot be trusted or read. `owner`: the only user the file may belong
    to (root; another in unit tests)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return Policy()
    except OSError as exc:
        raise UsageError(f"cannot read the device policy {path}", exc.strerror or str(exc)) from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if st.st_uid != owner or st.st_mode & 0o022 or not stat.S_ISREG(st.st_mode):
            raise UsageError(f"the device policy {path} is not root's alone",
                             f"owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):o}: whoever may change it "
                             "decides what QEMU may touch as root", f"chown root:root {path}; chmod 644 {path}")
        text = f.read()
    return parse(text, path)


def parse(text: bytes, source: str) -> Policy:
    import tomllib  # only when a site has a policy file

    try:
        doc = tomllib.loads(text.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"the device policy {source} is not valid TOML", str(exc)) from None
    values = {}
    found = Problems()
    for key, value in doc.items():
        with found.check():
            values[key] = _entry(source, key, value)
    found.raise_if_any(f"the device policy {source} has {len(found.errors)} errors")
    return Policy(**values, source=source)


def _entry(source: str, key: str, value) -> tuple:
    """One key of a policy file, checked."""
    if key not in _LISTS:
        raise UsageError(f"the device policy {source} has the unknown key {key!r}",
                         f"known keys: {', '.join(sorted(_LISTS))}", "Fix the policy file")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"the device policy {source}: {key} is not a list of strings", f"got {value!r}")
    if key.endswith("_dirs") or key == "emulators":
        bad = [v for v in value if not _clean_absolute(v)]
        if bad:
            raise UsageError(f"the device policy {source}: {key} has paths that are not absolute and "
                             f"normalised: {', '.join(bad)}")
    return tuple(value)


def _clean_absolute(path: str) -> bool:
    return path.startswith("/") and os.path.normpath(path) == path.rstrip("/") or path == "/"


def _inside(path, dirs) -> bool:
    if not isinstance(path, str) or not path.startswith("/") or ".." in path.split("/"):
        return False
    path = os.path.normpath(path)
    return any(path.startswith(d.rstrip("/") + "/") for d in dirs)


# libvirt's character device types that touch no host file, socket or device
_SAFE_CHARDEVS = {"pty", "vc", "null", "spicevmc", "spiceport", "qemu-vdagent", "dbus"}
_CHARDEVS = ("serial", "console", "parallel", "channel", "redirdev", "smartcard")
# exempt from the catch-all: text that is not a host path
_NOT_PATHS = {"partition", "cmdline", "description", "title", "label", "imagelabel", "baselabel"}
_SKIP_SUBTREES = {"metadata", "description", "title"}
_DEFAULT_TAP = {"tap": "/dev/net/tun", "vhost": "/dev/vhost-net"}
_RNG_DEVICES = {"/dev/urandom", "/dev/random", "/dev/hwrng"}


class _Check:
    def __init__(self, root, vm: str, pool: str, namespace: str, policy: Policy):
        self.root, self.vm, self.pool, self.namespace, self.policy = root, vm, pool, namespace, policy
        self.problems: list = []
        self.approved: set = set()     # (element, attribute or None): host paths a rule allowed

    def refuse(self, what: str) -> None:
        self.problems.append(what)

    def allow(self, el, attr=None) -> None:
        self.approved.add((el, attr))

    def path_rule(self, el, attr, dirs, what: str, setting: str) -> None:
        value = el.get(attr) if attr else (el.text or "").strip()
        if not value:
            return
        if _inside(value, dirs):
            self.allow(el, attr)
        else:
            self.refuse(f"{what} {value}: outside {_dirs(dirs)} (policy {setting})")
            self.allow(el, attr)   # said once

    def run(self) -> list:
        for el in self.root.iter():
            if isinstance(el.tag, str) and el.tag.startswith("{") and not self._in_metadata(el):
                ns, local = el.tag[1:].split("}", 1)
                self.refuse(f"<{local}> of namespace {ns}: hypervisor passthrough (e.g. <qemu:commandline>) "
                            "is never allowed")
        self._os()
        devices = self.root.find("devices")
        if devices is not None:
            for el in devices:
                rule = getattr(self, "_" + el.tag, None) if isinstance(el.tag, str) else None
                if rule:
                    rule(el)
                elif el.tag in _CHARDEVS:
                    self._chardev(el, el.tag)
        self._catch_all()
        return self.problems

    def _in_metadata(self, el) -> bool:
        return any(a.tag == "metadata" for a in el.iterancestors())

    def _os(self) -> None:
        os_ = self.root.find("os")
        if os_ is None:
            return
        p = self.policy
        for tag in ("kernel", "initrd", "dtb", "loader"):
            for el in os_.findall(tag):
                self.path_rule(el, None, p.firmware_dirs, f"<os><{tag}>", "firmware_dirs")
        for el in os_.findall("nvram"):
            self.path_rule(el, "template", p.firmware_dirs, "<os><nvram template>", "firmware_dirs")
            if el.get("type", "file") == "file":
                self.path_rule(el, None, p.nvram_dirs, "<os><nvram>", "nvram_dirs")
                continue
            source = el.find("source")
            spec = source.get("name", "") if source is not None else ""
            if el.get("type") != "network" or source is None or source.get("protocol") != "rbd" \
                    or not self._own_image(spec, names.nvram_image(self.vm)):
                self.refuse(f"<os><nvram> is {el.get('type')} {spec or '(none named)'}: only VM {self.vm}'s own "
                            f"variable store {names.nvram_image(self.vm)} or a file in the nvram directories")
            if source is not None and source.find("config") is not None:
                self.refuse("<os><nvram> reads a Ceph configuration file: the node's own configuration is used")
                self.allow(source.find("config"), "file")
        for el in os_.findall("acpi/table"):
            self.path_rule(el, None, p.firmware_dirs, "<os><acpi><table>", "firmware_dirs")

    def _emulator(self, el) -> None:
        value = (el.text or "").strip()
        if value not in self.policy.emulators:
            self.refuse(f"<emulator> {value}: not one of the allowed emulators (policy emulators)")
        self.allow(el)

    def _disk(self, el) -> None:
        kind, device = el.get("type", "file"), el.get("device", "disk")
        source = el.find("source")
        target_el = el.find("target")
        target = target_el.get("dev", "?") if target_el is not None else "?"
        if kind == "network" and source is not None and source.get("protocol") == "rbd":
            image = source.get("name", "")
            if not self._own_image(image):
                self.refuse(f"disk {target} is the RBD image {image}, which is not one of VM {self.vm}'s own "
                            f"(pool {self.pool}{', namespace ' + self.namespace if self.namespace else ''})")
            if source.find("config") is not None:
                self.refuse(f"disk {target} reads the Ceph configuration {source.find('config').get('file')}: "
                            "the node's own configuration is used")
                self.allow(source.find("config"), "file")
            return
        if kind == "vhostuser" and source is not None:
            self.path_rule(source, "path", self.policy.vhostuser_dirs, f"vhost-user disk {target} socket",
                           "vhostuser_dirs")
            return
        has_source = source is not None and any(source.get(a) for a in ("file", "dev", "dir", "name", "pool",
                                                                         "volume", "path"))
        if device in ("cdrom", "floppy") and not has_source:
            return          # an empty drive
        what = source.get("file") or source.get("dev") or source.get("dir") or source.get("name") \
            if source is not None else ""
        self.refuse(f"disk {target} is backed by the host's {kind} {what or '(none named)'}: only the VM's own "
                    "RBD images may back its disks")
        for a in ("file", "dev", "dir", "path"):
            if source is not None and source.get(a):
                self.allow(source, a)

    def _own_image(self, spec: str, exactly: str | None = None) -> bool:
        """`spec` (pool[/namespace]/image) is one of the VM's disks, or the image `exactly`."""
        parts = spec.split("/")
        pool, image = parts[0], parts[-1]
        namespace = parts[1] if len(parts) == 3 else ""
        mine = image == exactly if exactly else names.is_vm_disk(self.vm, image.split("@")[0])
        return len(parts) in (2, 3) and pool == self.pool and namespace == self.namespace \
            and mine and "@" not in image

    def _filesystem(self, el) -> None:
        source = el.find("source")
        what = next((source.get(a) for a in ("dir", "file", "name", "socket") if source is not None
                     and source.get(a)), "")
        self.refuse(f"filesystem {what or el.get('type', '')} shared from the host: never allowed")
        if source is not None:
            for a in ("dir", "file", "socket"):
                self.allow(source, a)

    def _chardev(self, el, what: str, kind=None) -> None:
        kind = kind or el.get("type", "pty")
        p = self.policy
        label = f"<{what} type='{kind}'>"
        for log in el.findall("log"):
            self.path_rule(log, "file", p.file_dirs, f"{label} log file", "file_dirs")
        source = el.find("source")
        if kind in _SAFE_CHARDEVS:
            if kind == "pty" and source is not None and (source.get("path") or "").startswith("/dev/pts/"):
                self.allow(source, "path")    # a running domain's XML names its pty
            return
        if kind == "file":
            if source is not None:
                self.path_rule(source, "path", p.file_dirs, f"{label} file", "file_dirs")
            return
        if kind == "unix":
            if source is not None and source.get("path"):
                self.path_rule(source, "path", p.socket_dirs, f"{label} socket", "socket_dirs")
            return
        self.refuse(f"{label}: backed by the host's {kind} (a device, pipe, terminal or network port)")
        if source is not None:
            self.allow(source, "path")

    def _interface(self, el) -> None:
        kind = el.get("type", "")
        p = self.policy
        for tag in ("script", "downscript"):
            for script in el.findall(tag):
                self.refuse(f"<interface type='{kind}'> runs the host script {script.get('path')}: never allowed")
                self.allow(script, "path")
        backend = el.find("backend")
        if backend is not None:
            for attr, default in _DEFAULT_TAP.items():
                if backend.get(attr) == default:
                    self.allow(backend, attr)
        if kind == "vhostuser":
            source = el.find("source")
            if source is not None:
                self.path_rule(source, "path", p.vhostuser_dirs, "vhost-user interface socket", "vhostuser_dirs")
            return
        if kind == "hostdev":
            self._pci(el, "<interface type='hostdev'>")
            return
        if kind not in p.interface_types:
            self.refuse(f"<interface type='{kind}'>: not an allowed interface type (policy interface_types)")

    def _hostdev(self, el) -> None:
        if el.get("mode", "subsystem") == "subsystem" and el.get("type") == "pci":
            self._pci(el, "<hostdev type='pci'>")
        else:
            self.refuse(f"<hostdev mode='{el.get('mode', 'subsystem')}' type='{el.get('type')}'>: only PCI "
                        "devices may be passed through (policy pci_devices)")

    def _pci(self, el, label: str) -> None:
        address = el.find("source/address")
        if address is None:
            self.refuse(f"{label} names no PCI address")
            return
        try:
            addr = "{:04x}:{:02x}:{:02x}.{:x}".format(*(int(address.get(k, "0"), 0)
                                                        for k in ("domain", "bus", "slot", "function")))
        except ValueError:
            self.refuse(f"{label} has an unreadable PCI address")
            return
        if "*" not in self.policy.pci_devices and addr not in self.policy.pci_devices:
            self.refuse(f"{label} passes the host's PCI device {addr} through: not allowed (policy pci_devices)")

    def _rng(self, el) -> None:
        backend = el.find("backend")
        if backend is None:
            return
        if backend.get("model") == "random":
            if (backend.text or "").strip() in _RNG_DEVICES or not (backend.text or "").strip():
                self.allow(backend)
        elif backend.get("model") == "egd":
            self._chardev(backend, "rng backend", backend.get("type", "pty"))

    def _tpm(self, el) -> None:
        backend = el.find("backend")
        if backend is not None and backend.get("type") != "emulator":
            self.refuse(f"<tpm> backend {backend.get('type')}: only the emulated TPM is allowed")

    def _input(self, el) -> None:
        if el.get("type") in ("passthrough", "evdev"):
            source = el.find("source")
            self.refuse(f"<input type='{el.get('type')}'> reads the host's input device "
                        f"{source.get('evdev') or source.get('dev') if source is not None else ''}: never allowed")
            if source is not None:
                self.allow(source, "evdev")
                self.allow(source, "dev")

    def _catch_all(self) -> None:
        stack = [(self.root, "domain")]
        while stack:
            el, where = stack.pop()
            for attr, value in el.attrib.items():
                if value.startswith("/") and (el, attr) not in self.approved:
                    self.refuse(f"host path {value} in <{where} {attr}>: not allowed by the device policy")
            text = (el.text or "").strip()
            if text.startswith("/") and (el, None) not in self.approved and el.tag not in _NOT_PATHS:
                self.refuse(f"host path {text} in <{where}>: not allowed by the device policy")
            for child in el:
                if isinstance(child.tag, str) and child.tag not in _SKIP_SUBTREES:
                    stack.append((child, f"{where}/{child.tag}"))


def _dirs(dirs) -> str:
    return ", ".join(dirs) if dirs else "(no directory allowed)"


def problems(root, *, vm: str, pool: str, namespace: str, policy: Policy) -> list:
    """Every way this definition (a parsed <domain>) breaks the policy; empty when it may run."""
    return _Check(root, vm, pool, namespace, policy).run()
