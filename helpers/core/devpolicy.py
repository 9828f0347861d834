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
import re
import stat
from dataclasses import dataclass, field, fields

from . import domainvocab, libvirtschema, names
from .domainvocab import SINGLE
from .domainxml import content
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
    """`path` names a file inside one of `dirs` as the kernel resolves it: absolute, no '..'
    (a '..' after a link is not the lexical parent), normalised otherwise."""
    if not isinstance(path, str) or not path.startswith("/") or ".." in path.split("/"):
        return False
    path = os.path.normpath(path)
    return any(path.startswith(d.rstrip("/") + "/") for d in dirs)


def _why_outside(path: str) -> str:
    if not path.startswith("/"):
        return "a relative path (QEMU and libvirt resolve it from the host's /)"
    if ".." in path.split("/"):
        return "a path through '..'"
    return "outside"


def _between(el) -> str:
    """An element's own text: before, between and after its children (comments' text apart)."""
    return (el.text or "") + "".join(c.tail or "" for c in el)


# libvirt's character device types that touch no host file, socket or device
_SAFE_CHARDEVS = {"pty", "vc", "null", "spicevmc", "spiceport", "qemu-vdagent", "dbus"}
_CHARDEVS = ("serial", "console", "parallel", "channel", "redirdev", "smartcard")
# audio backends that reach no host sound device or server
_SAFE_AUDIO = {"none", "spice", "dbus"}
# remote displays, served by QEMU on a port or libvirt's own socket
_SAFE_GRAPHICS = {"vnc", "spice"}
_SKIP_SUBTREES = {"metadata", "description", "title"}
_DEFAULT_TAP = {"tap": "/dev/net/tun", "vhost": "/dev/vhost-net"}
_RNG_DEVICES = {"/dev/urandom", "/dev/random", "/dev/hwrng"}
# a cgroup partition: /machine, /machine/rt (libvirt makes it under the cgroup root)
_PARTITION = re.compile(r"(/[A-Za-z0-9_][A-Za-z0-9_.-]*)+")
_PTY_DIRS = ("/dev/pts",)


class _Check:
    def __init__(self, root, vm: str, pool: str, namespace: str, policy: Policy):
        self.root, self.vm, self.pool, self.namespace, self.policy = root, vm, pool, namespace, policy
        self.problems: list = []
        self.approved: set = set()     # (element, attribute or None): host paths a rule allowed
        self.judged: set = set()       # elements a rule refused as a whole (said once)

    def refuse(self, what: str) -> None:
        self.problems.append(what)

    def allow(self, el, attr=None) -> None:
        self.approved.add((el, attr))

    def path_rule(self, el, attr, dirs, what: str, setting: str) -> None:
        value = el.get(attr) if attr else content(el)
        if not value:
            return
        if not _inside(value, dirs):
            why = _why_outside(value)
            self.refuse(f"{what} {value}: {why} {_dirs(dirs) if why == 'outside' else ''}".rstrip()
                        + f" (policy {setting})")
        self.allow(el, attr)   # said once

    def run(self) -> list:
        if not self._read_as_libvirt():
            return self.problems    # nothing further is judged on a reading libvirt does not share
        self.problems += libvirtschema.problems(self.root)
        self._os()
        for devices in self.root.findall("devices"):
            for el in devices:
                rule = getattr(self, "_" + el.tag.replace("-", "_"), None) if isinstance(el.tag, str) else None
                if rule:
                    rule(el)
                elif el.tag in _CHARDEVS:
                    self._chardev(el, el.tag)
        partition = self.root.find("resource/partition")
        if partition is not None:
            if not _PARTITION.fullmatch(content(partition)) or ".." in content(partition).split("/"):
                self.refuse(f"<resource><partition> {content(partition)!r}: not a cgroup partition name")
            self.allow(partition)
        self._catch_all()
        return self.problems

    # ---------------------------------------------------------------- one reading
    def _read_as_libvirt(self) -> bool:
        """Refuse what libvirt would read otherwise than lxml does: comments and processing
        instructions that split an element's text (libvirt joins it), attributes of another
        namespace (libvirt reads an attribute by its local name), elements of a namespace
        (hypervisor passthrough), and a second copy of an element libvirt reads once.
        True when the definition can be judged at all."""
        if self.root.tag != "domain":
            self.refuse(f"the root element is <{self.root.tag}>, not <domain> (no namespace)")
            return False
        before = len(self.problems)
        stack = [self.root]
        while stack:
            el = stack.pop()
            children = list(el)
            if not isinstance(el.tag, str):
                continue
            if el.tag.startswith("{"):
                ns, local = el.tag[1:].split("}", 1)
                self.refuse(f"<{local}> of namespace {ns}: hypervisor passthrough (e.g. <qemu:commandline>) "
                            "and other namespaced elements are allowed only inside <metadata>")
                continue
            for attr in el.attrib:
                if attr.startswith("{"):
                    self.refuse(f"<{el.tag}> has the attribute {attr} of another namespace: libvirt would read "
                                "it as its plain name")
            others = [c for c in children if not isinstance(c.tag, str)]
            text = _between(el)
            # in an element of text, even blank text around a comment is read otherwise (lxml may
            # drop it as ignorable, libvirt keeps it)
            if others and (text.strip() or not any(isinstance(c.tag, str) for c in children)):
                kind = {"Comment": "a comment", "ProcessingInstruction": "a processing instruction"}.get(
                    type(others[0]).__name__.lstrip("_"), "an entity reference")
                self.refuse(f"<{el.tag}> has {kind} inside its text: libvirt reads the text around it as one")
            once = SINGLE.get(el.tag, set())
            seen: set = set()
            for c in children:
                if isinstance(c.tag, str) and c.tag in once:
                    if c.tag in seen:
                        self.refuse(f"<{el.tag}> has more than one <{c.tag}>: libvirt reads them as one")
                    seen.add(c.tag)
            stack += [c for c in children if c.tag not in _SKIP_SUBTREES]
        return len(self.problems) == before

    # ---------------------------------------------------------------- rules
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
            if source is not None:
                self.allow(source, "name")
            if source is not None and source.find("config") is not None:
                self.refuse("<os><nvram> reads a Ceph configuration file: the node's own configuration is used")
                self.judged.add(source.find("config"))
        for el in os_.findall("acpi/table"):
            self.path_rule(el, None, p.firmware_dirs, "<os><acpi><table>", "firmware_dirs")

    def _emulator(self, el) -> None:
        value = content(el)
        if value not in self.policy.emulators:
            self.refuse(f"<emulator> {value}: not one of the allowed emulators (policy emulators)")
        self.allow(el)

    def _disk(self, el) -> None:
        kind, device = el.get("type", "file"), el.get("device", "disk")
        source = el.find("source")
        target_el = el.find("target")
        target = target_el.get("dev", "?") if target_el is not None else "?"
        backing = el.find("backingStore")
        if backing is not None and (len(backing) or backing.attrib):
            self.refuse(f"disk {target} names a backing store: a disk's data comes from its own image only")
            self.judged.add(backing)
        if kind == "network" and source is not None and source.get("protocol") == "rbd":
            image = source.get("name", "")
            if not self._own_image(image):
                self.refuse(f"disk {target} is the RBD image {image}, which is not one of VM {self.vm}'s own "
                            f"(pool {self.pool}{', namespace ' + self.namespace if self.namespace else ''})")
            self.allow(source, "name")
            if source.find("config") is not None:
                self.refuse(f"disk {target} reads the Ceph configuration {source.find('config').get('file')}: "
                            "the node's own configuration is used")
                self.judged.add(source.find("config"))
            return
        if kind == "vhostuser" and source is not None:
            self.path_rule(source, "path", self.policy.vhostuser_dirs, f"vhost-user disk {target} socket",
                           "vhostuser_dirs")
            return
        has_source = source is not None and (len(source) or any(source.get(a) for a in (
            "file", "dev", "dir", "name", "pool", "volume", "path", "type", "protocol")))
        if device in ("cdrom", "floppy") and kind in ("file", "block") and not has_source:
            return          # an empty drive
        what = next((source.get(a) for a in ("file", "dev", "dir", "name", "path") if source.get(a)), "") \
            if source is not None else ""
        self.refuse(f"disk {target} is backed by the host's {kind} {what or '(none named)'}: only the VM's own "
                    "RBD images may back its disks")
        self.judged.add(el)

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
        self.judged.add(el)

    def _shmem(self, el) -> None:
        self.refuse(f"<shmem name='{el.get('name')}'>: shared memory with the host (a file in /dev/shm, or a "
                    "server's socket) is never allowed")
        self.judged.add(el)

    def _chardev(self, el, what: str, kind=None) -> None:
        kind = kind or el.get("type", "pty")
        p = self.policy
        label = f"<{what} type='{kind}'>"
        for log in el.findall("log"):
            self.path_rule(log, "file", p.file_dirs, f"{label} log file", "file_dirs")
        source = el.find("source")
        if kind in _SAFE_CHARDEVS:
            if kind == "pty" and source is not None and source.get("path"):
                # a running domain's XML names its pty
                self.path_rule(source, "path", _PTY_DIRS, f"{label} pty", "(a pty lives in /dev/pts)")
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
        self.judged.add(el)

    def _interface(self, el) -> None:
        kind = el.get("type", "")
        p = self.policy
        for tag in ("script", "downscript"):
            for script in el.findall(tag):
                self.refuse(f"<interface type='{kind}'> runs the host script {script.get('path')}: never allowed")
                self.judged.add(script)
        for tag in ("ip", "route"):
            for item in el.findall(tag):
                self.refuse(f"<interface type='{kind}'><{tag}>: addresses and routes on the host's side of an "
                            "interface are the host's network configuration, not a VM's")
                self.judged.add(item)
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
            self.judged.add(el)

    def _hostdev(self, el) -> None:
        if el.get("mode", "subsystem") == "subsystem" and el.get("type") == "pci":
            self._pci(el, "<hostdev type='pci'>")
        else:
            self.refuse(f"<hostdev mode='{el.get('mode', 'subsystem')}' type='{el.get('type')}'>: only PCI "
                        "devices may be passed through (policy pci_devices)")
            self.judged.add(el)

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
            text = content(backend)
            if text and text not in _RNG_DEVICES:
                self.refuse(f"<rng> reads the host's {text!r}: only {', '.join(sorted(_RNG_DEVICES))}")
            self.allow(backend)
        elif backend.get("model") == "egd":
            self._chardev(backend, "rng backend", backend.get("type", "pty"))

    def _tpm(self, el) -> None:
        backend = el.find("backend")
        if backend is not None and backend.get("type") != "emulator":
            self.refuse(f"<tpm> backend {backend.get('type')}: only the emulated TPM is allowed")
            self.judged.add(el)

    def _input(self, el) -> None:
        if el.get("type") in ("passthrough", "evdev"):
            source = el.find("source")
            self.refuse(f"<input type='{el.get('type')}'> reads the host's input device "
                        f"{source.get('evdev') or source.get('dev') if source is not None else ''}: never allowed")
            self.judged.add(el)

    def _graphics(self, el) -> None:
        if el.get("type") not in _SAFE_GRAPHICS:
            self.refuse(f"<graphics type='{el.get('type')}'>: draws on the host (its display, a render node, a "
                        f"D-Bus peer); only {', '.join(sorted(_SAFE_GRAPHICS))}")
            self.judged.add(el)

    def _audio(self, el) -> None:
        if el.get("type") not in _SAFE_AUDIO:
            self.refuse(f"<audio type='{el.get('type')}'>: reaches the host's sound devices or server; "
                        f"only {', '.join(sorted(_SAFE_AUDIO))}")
            self.judged.add(el)

    # ---------------------------------------------------------------- the allow-list
    def _catch_all(self) -> None:
        """Every element, attribute and text not declared in domainvocab, and every value a
        rule did not judge that could name a host file, is refused."""
        stack = [(self.root, "", "domain")]
        while stack:
            el, parent, where = stack.pop()
            if el in self.judged:
                continue
            spec = domainvocab.declared(parent, el.tag)
            if spec is None:
                self.refuse(f"<{where}>: an element rbdvm's device policy does not admit")
                continue
            for attr, value in el.attrib.items():
                if (el, attr) in self.approved:
                    continue
                if attr not in spec.attrs:
                    self.refuse(f"<{where} {attr}='{value}'>: an attribute rbdvm's device policy does not admit")
                elif attr not in spec.free and not domainvocab.plain_value(value):
                    self.refuse(f"<{where} {attr}='{value}'>: a path or a name with '/' where the device "
                                "policy admits none")
            # a declared text is the element's whole content; elsewhere, text between children
            text = content(el) if spec.text else _between(el)
            if text.strip() and (el, None) not in self.approved and spec.text != "free":
                if spec.text is None or spec.text == "path":
                    self.refuse(f"<{where}> {text.strip()!r}: text rbdvm's device policy does not admit here")
                elif not domainvocab.plain_value(text):
                    self.refuse(f"<{where}> {text!r}: a path or a name with '/' where the device policy "
                                "admits none")
            if el.tag in _SKIP_SUBTREES:
                continue
            for child in el:
                if isinstance(child.tag, str):
                    stack.append((child, el.tag, f"{where}/{child.tag}"))


def _dirs(dirs) -> str:
    return ", ".join(dirs) if dirs else "(no directory allowed)"


def problems(root, *, vm: str, pool: str, namespace: str, policy: Policy) -> list:
    """Every way this definition (a parsed <domain>) breaks the policy; empty when it may run."""
    return _Check(root, vm, pool, namespace, policy).run()
