"""The lab's test guest: a 512-byte boot sector that prints READY on the serial port and
powers off on the ACPI power button, so "the guest runs" and "graceful shutdown works" are
observable for real, with no OS image to download.

The boot sector is hand-assembled below (16-bit real mode, loaded at 0x7c00 by SeaBIOS on
QEMU's i440fx 'pc' machine): each instruction is its machine code beside its mnemonic, so it
is produced and reviewed without an assembler.
"""

import struct

ORG = 0x7C00
MSG_READY = b"READY\r\n\0"
MSG_POWEROFF = b"POWEROFF\r\n\0"
CODE_SIZE = 0x53          # the messages follow the code


def _le16(value: int) -> str:
    return struct.pack("<H", value).hex()


def _program():
    ready, poweroff = ORG + CODE_SIZE, ORG + CODE_SIZE + len(MSG_READY)
    return [
        # -- 0x00: set up segments and stack, say READY
        ("fa", "cli"),
        ("31c0", "xor ax, ax"),
        ("8ed8", "mov ds, ax"),
        ("8ed0", "mov ss, ax"),
        ("bc007c", "mov sp, 0x7c00"),
        ("be" + _le16(ready), "mov si, msg_ready"),
        ("e83700", "call puts                 ; rel16 -> 0x47"),
        # -- 0x10: PM I/O base = PCI config (bus 0, dev 1, fn 3 = PIIX4 ACPI), reg 0x40
        ("66b8400b0080", "mov eax, 0x80000b40"),
        ("baf80c", "mov dx, 0xcf8"),
        ("66ef", "out dx, eax"),
        ("bafc0c", "mov dx, 0xcfc"),
        ("66ed", "in eax, dx"),
        ("83e0c0", "and ax, 0xffc0"),
        ("89c3", "mov bx, ax                ; bx = PM base"),
        ("8d5702", "lea dx, [bx+2]            ; PM1a_EN"),
        ("b80001", "mov ax, 0x0100            ; PWRBTN_EN"),
        ("ef", "out dx, ax"),
        ("fb", "sti"),
        # -- 0x2d: sleep until an interrupt, then poll PWRBTN_STS
        ("f4", "wait: hlt"),
        ("89da", "mov dx, bx                ; PM1a_STS"),
        ("ed", "in ax, dx"),
        ("a90001", "test ax, 0x0100           ; PWRBTN_STS"),
        ("74f7", "jz wait                   ; rel8 -> 0x2d"),
        # -- 0x36: power button pressed: say POWEROFF, enter S5
        ("be" + _le16(poweroff), "mov si, msg_poweroff"),
        ("e80b00", "call puts                 ; rel16 -> 0x47"),
        ("8d5704", "lea dx, [bx+4]            ; PM1a_CNT"),
        ("b80020", "mov ax, 0x2000            ; SLP_EN | SLP_TYP=0 (S5 soft-off)"),
        ("ef", "out dx, ax"),
        ("fa", "dead: cli"),
        ("f4", "hlt"),
        ("ebfc", "jmp dead                  ; rel8 -> 0x43"),
        # -- 0x47: puts: write the NUL-terminated string at ds:si to COM1
        ("baf803", "puts: mov dx, 0x3f8"),
        ("ac", "next: lodsb"),
        ("84c0", "test al, al"),
        ("7403", "jz done                   ; rel8 -> 0x52"),
        ("ee", "out dx, al"),
        ("ebf8", "jmp next                  ; rel8 -> 0x4a"),
        ("c3", "done: ret"),
    ]


def boot_sector() -> bytes:
    code = b"".join(bytes.fromhex(hexcode) for hexcode, _ in _program())
    if len(code) != CODE_SIZE:
        raise AssertionError(f"boot code is {len(code)} bytes, the layout expects {CODE_SIZE}")
    return (code + MSG_READY + MSG_POWEROFF).ljust(510, b"\0") + b"\x55\xaa"


def disk_image(size: int = 1 << 20) -> bytes:
    """A raw disk whose first sector is the boot sector; the rest is zeros."""
    return boot_sector().ljust(size, b"\0")


def base_xml(name: str, serial_path: str, uuid=None, memory_mib: int = 64, interface: bool = False) -> str:
    """A TCG domain without disks: what an operator gives `rbdvm create --xml`."""
    from lxml import (
        etree,  # only the tests and the demo build domains; the lab itself does not
    )

    dom = etree.Element("domain", type="qemu")   # TCG: SeaBIOS under KVM takes 5-8 s here
    etree.SubElement(dom, "name").text = name
    if uuid:
        etree.SubElement(dom, "uuid").text = uuid
    etree.SubElement(dom, "memory", unit="MiB").text = str(memory_mib)
    etree.SubElement(dom, "vcpu").text = "1"
    os_ = etree.SubElement(dom, "os")
    etree.SubElement(os_, "type", arch="x86_64", machine="pc").text = "hvm"
    etree.SubElement(os_, "boot", dev="hd")
    etree.SubElement(etree.SubElement(dom, "features"), "acpi")
    etree.SubElement(dom, "on_poweroff").text = "destroy"
    etree.SubElement(dom, "on_crash").text = "destroy"
    devices = etree.SubElement(dom, "devices")
    if interface:
        iface = etree.SubElement(devices, "interface", type="user")
        etree.SubElement(iface, "model", type="virtio")
    serial = etree.SubElement(devices, "serial", type="file")
    etree.SubElement(serial, "source", path=serial_path, append="on")
    etree.SubElement(serial, "target", port="0")
    etree.SubElement(devices, "memballoon", model="none")
    return etree.tostring(dom, pretty_print=True, encoding="unicode")


def domain_xml(name: str, uuid: str, rbd_image: str, serial_path: str, memory_mib: int = 64) -> str:
    """The base domain plus one RBD disk, as client.rbdvm (key from the libvirt secret)."""
    from lxml import etree

    from . import layout as L

    dom = etree.fromstring(base_xml(name, serial_path, uuid, memory_mib))
    devices = dom.find("devices")
    disk = etree.Element("disk", type="network", device="disk")
    devices.insert(0, disk)
    etree.SubElement(disk, "driver", name="qemu", type="raw", cache="none")
    auth = etree.SubElement(disk, "auth", username=L.CEPH_USER)
    etree.SubElement(auth, "secret", type="ceph", usage=f"client.{L.CEPH_USER}")
    source = etree.SubElement(disk, "source", protocol="rbd", name=f"{L.POOL}/{rbd_image}")
    for mon in L.MONS:
        etree.SubElement(source, "host", name=L.IP[mon], port=str(L.MON_V1))
    etree.SubElement(disk, "target", dev="vda", bus="virtio")
    return etree.tostring(dom, pretty_print=True, encoding="unicode")


def seapath_like_base_xml(name: str) -> str:
    """A base in the shape of SEAPATH's standard guest (seapath/ansible templates/vm/
    guest.xml.j2): q35 with UEFI firmware, a real-time partition and pinning, bridge and
    OVS (ethernet, unmanaged tap) interfaces, pty serial and console, a guest-agent channel
    on libvirt's own socket path, a watchdog. Built here for the device-policy checks; the
    lab does not boot it (no OVMF, no bridge)."""
    from lxml import etree

    dom = etree.Element("domain", type="kvm")
    etree.SubElement(dom, "name").text = name
    etree.SubElement(dom, "description").text = "SEAPATH-like guest"
    etree.SubElement(etree.SubElement(dom, "resource"), "partition").text = "/machine/rt"
    etree.SubElement(dom, "vcpu", placement="static").text = "2"
    etree.SubElement(dom, "memory", unit="MiB").text = "2048"
    os_ = etree.SubElement(dom, "os", firmware="efi")
    etree.SubElement(os_, "type", arch="x86_64", machine="q35").text = "hvm"
    etree.SubElement(os_, "boot", dev="hd")
    etree.SubElement(os_, "bios", useserial="yes", rebootTimeout="0")
    etree.SubElement(os_, "smbios", mode="emulate")
    etree.SubElement(etree.SubElement(os_, "firmware"), "feature", enabled="no", name="secure-boot")
    features = etree.SubElement(dom, "features")
    for f in ("acpi", "apic"):
        etree.SubElement(features, f)
    cputune = etree.SubElement(dom, "cputune")
    etree.SubElement(cputune, "vcpupin", vcpu="0", cpuset="2")
    etree.SubElement(cputune, "vcpusched", vcpus="0", scheduler="fifo", priority="1")
    etree.SubElement(dom, "cpu", mode="host-passthrough")
    devices = etree.SubElement(dom, "devices")
    etree.SubElement(devices, "emulator").text = "/usr/bin/qemu-system-x86_64"
    bridge = etree.SubElement(devices, "interface", type="bridge")
    etree.SubElement(bridge, "source", bridge="br0")
    etree.SubElement(bridge, "model", type="virtio")
    etree.SubElement(etree.SubElement(bridge, "vlan"), "tag", id="100")
    ovs = etree.SubElement(devices, "interface", type="ethernet")
    etree.SubElement(ovs, "target", dev="vm-port1", managed="no")
    etree.SubElement(ovs, "model", type="virtio")
    etree.SubElement(devices, "controller", type="pci", index="0", model="pcie-root")
    serial = etree.SubElement(devices, "serial", type="pty")
    etree.SubElement(serial, "target", type="isa-serial", port="0")
    console = etree.SubElement(devices, "console", type="pty")
    etree.SubElement(console, "target", type="serial", port="0")
    channel = etree.SubElement(devices, "channel", type="unix")
    etree.SubElement(channel, "source", mode="bind")
    etree.SubElement(channel, "target", type="virtio", name="org.qemu.guest_agent.0")
    etree.SubElement(devices, "memballoon", model="none")
    etree.SubElement(devices, "watchdog", model="i6300esb", action="poweroff")
    return etree.tostring(dom, pretty_print=True, encoding="unicode")


# ------------------------------------------------------------------ the UEFI guest
# The UEFI guest needs no OS either: OVMF finds no bootable disk, starts its built-in UEFI
# Shell, and the Shell runs startup.nsh from the first FAT filesystem it sees: the disk.
# A Shell variable set without -v is non-volatile: kept in the firmware's variable store. So
# each boot prints the variables it found, then adds one "x" (RBDVM-VARS [xx] means the
# store saw two earlier boots), then READY.
UEFI_STARTUP = ("@echo -off\r\n"
                "echo RBDVM-VARS [%rbdvmgen%]\r\n"
                "set rbdvmgen x%rbdvmgen%\r\n"
                "echo RBDVM-WROTE [%rbdvmgen%]\r\n"
                "echo READY\r\n")


def uefi_disk_image(path: str) -> None:
    """A 2 MiB FAT disk (no partition table: OVMF mounts a bare FAT volume) holding
    startup.nsh, written with mtools, never mounted."""
    import os
    import subprocess
    import tempfile

    with open(path, "wb") as f:
        f.truncate(2 << 20)
    subprocess.run(["mformat", "-i", path, "-T", "4096", "-h", "2", "-s", "32", "::"], check=True,
                   capture_output=True)
    with tempfile.NamedTemporaryFile("w", suffix=".nsh", delete=False) as script:
        script.write(UEFI_STARTUP)
    try:
        subprocess.run(["mcopy", "-o", "-i", path, script.name, "::/startup.nsh"], check=True, capture_output=True)
    finally:
        os.unlink(script.name)


def seapath_uefi_xml(name: str, serial_log: str, secure_boot: bool = False) -> str:
    """SEAPATH's standard guest (seapath/ansible templates/vm/guest.xml.j2, default
    features) as the lab can run it: q35, <os firmware="efi"> with the secure-boot feature,
    bootmenu off, serial BIOS output, emulated SMBIOS, ACPI/APIC/vmport off, its clock
    timers, pcie-root, a pty serial and console, no balloon, the i6300esb watchdog.
    Left out: KVM (TCG here: /dev/kvm cannot run guests on this machine), the host-model
    CPU (TCG has no host), hugepages (dpdk feature), the real-time partition, pinning and
    FIFO scheduling (rt/isolated features), PCI passthrough and bridge/OVS/SR-IOV
    interfaces (no such devices in the lab); memory 128 MiB instead of 2 GiB. The pty
    serial also logs to `serial_log`, where the tests read what the guest printed."""
    from lxml import etree

    dom = etree.Element("domain", type="qemu")
    etree.SubElement(dom, "name").text = name
    etree.SubElement(dom, "description").text = "SEAPATH standard guest, lab variant"
    etree.SubElement(dom, "vcpu", placement="static").text = "1"
    etree.SubElement(dom, "memory", unit="MiB").text = "128"
    etree.SubElement(dom, "currentMemory", unit="MiB").text = "128"
    os_ = etree.SubElement(dom, "os", firmware="efi")
    etree.SubElement(os_, "type", arch="x86_64", machine="q35").text = "hvm"
    etree.SubElement(os_, "boot", dev="hd")
    etree.SubElement(os_, "bootmenu", enable="no")
    etree.SubElement(os_, "bios", useserial="yes", rebootTimeout="0")
    etree.SubElement(os_, "smbios", mode="emulate")
    etree.SubElement(etree.SubElement(os_, "firmware"), "feature", enabled="yes" if secure_boot else "no",
                     name="secure-boot")
    features = etree.SubElement(dom, "features")
    etree.SubElement(features, "acpi")
    etree.SubElement(features, "apic")
    etree.SubElement(features, "vmport", state="off")
    clock = etree.SubElement(dom, "clock", offset="utc")
    etree.SubElement(clock, "timer", name="rtc", tickpolicy="catchup")
    etree.SubElement(clock, "timer", name="pit", tickpolicy="delay")
    etree.SubElement(clock, "timer", name="hpet", present="no")
    for event, action in (("on_poweroff", "destroy"), ("on_reboot", "restart"), ("on_crash", "destroy")):
        etree.SubElement(dom, event).text = action
    pm = etree.SubElement(dom, "pm")
    etree.SubElement(pm, "suspend-to-mem", enabled="no")
    etree.SubElement(pm, "suspend-to-disk", enabled="no")
    devices = etree.SubElement(dom, "devices")
    etree.SubElement(devices, "emulator").text = "/usr/bin/qemu-system-x86_64"
    etree.SubElement(devices, "controller", type="pci", index="0", model="pcie-root")
    serial = etree.SubElement(devices, "serial", type="pty")
    etree.SubElement(serial, "log", file=serial_log, append="on")
    target = etree.SubElement(serial, "target", type="isa-serial", port="0")
    etree.SubElement(target, "model", name="isa-serial")
    console = etree.SubElement(devices, "console", type="pty")
    etree.SubElement(console, "target", type="serial", port="0")
    etree.SubElement(devices, "memballoon", model="none")
    etree.SubElement(devices, "watchdog", model="i6300esb", action="poweroff")
    return etree.tostring(dom, pretty_print=True, encoding="unicode")


# ------------------------------------------------------------------ a guest that keeps writing
# For the live-migration benchmark: says READY, then writes its own boot sector to sector 2
# of its disk through the BIOS (int 13h) in a loop, for ever: a guest whose disk is busy
# while it migrates. It does not power off on ACPI (the benchmark destroys it).
WRITER_CODE_SIZE = 0x2F


def _writer_program():
    msg = ORG + WRITER_CODE_SIZE
    return [
        ("fa", "cli"),
        ("31c0", "xor ax, ax"),
        ("8ed8", "mov ds, ax"),
        ("8ec0", "mov es, ax"),
        ("8ed0", "mov ss, ax"),
        ("bc007c", "mov sp, 0x7c00"),
        ("fb", "sti"),
        ("be" + _le16(msg), "mov si, msg_ready"),
        ("e81000", "call puts                 ; rel16 -> 0x23"),
        # -- 0x13: write one sector (es:bx = this code) to C0 H0 S2 of the first disk, again
        ("b80103", "loop: mov ax, 0x0301      ; write, 1 sector"),
        ("b90200", "mov cx, 0x0002            ; cylinder 0, sector 2"),
        ("ba8000", "mov dx, 0x0080            ; head 0, first hard disk"),
        ("bb007c", "mov bx, 0x7c00"),
        ("cd13", "int 0x13"),
        ("ebf0", "jmp loop                  ; rel8 -> 0x13"),
        # -- 0x23: puts, as in the lab's guest
        ("baf803", "puts: mov dx, 0x3f8"),
        ("ac", "next: lodsb"),
        ("84c0", "test al, al"),
        ("7403", "jz done                   ; rel8 -> 0x2e"),
        ("ee", "out dx, al"),
        ("ebf8", "jmp next                  ; rel8 -> 0x26"),
        ("c3", "done: ret"),
    ]


def writer_disk_image(size: int = 1 << 20) -> bytes:
    code = b"".join(bytes.fromhex(hexcode) for hexcode, _ in _writer_program())
    if len(code) != WRITER_CODE_SIZE:
        raise AssertionError(f"writer code is {len(code)} bytes, the layout expects {WRITER_CODE_SIZE}")
    return (code + MSG_READY).ljust(510, b"\0").__add__(b"\x55\xaa").ljust(size, b"\0")



# ------------------------------------------------------------------ a guest that journals
# For the failover benchmark: a boot sector that boots in a fraction of a second and then
# writes a counter, as the Linux guest's journal mode does (labkit.linuxguest: FOUND n at
# boot, ACK n once n is written), through the BIOS: ten ASCII digits in sector 3 (LBA 2) of
# its disk, read at boot, incremented and written back (int 13h) for ever. A BIOS sends no
# flush, so librbd stays write-through ("rbd cache writethrough until flush"): each write
# returns once the OSDs hold it, and ACK n is printed only then.
JOURNAL_SECTOR = 3                   # CHS sector (1-based): LBA 2, byte 1024
MSG_FOUND, MSG_ACK = b"FOUND \0", b"ACK \0"
_BUF = 0x7E00                        # the sector's buffer, right after the boot sector


def _journal_program():
    """[(bytes, mnemonic)] with jumps resolved: each entry's size is fixed, targets are labels."""
    body = [
        ("start", "fa", "cli"), (None, "31c0", "xor ax, ax"), (None, "8ed8", "mov ds, ax"),
        (None, "8ec0", "mov es, ax"), (None, "8ed0", "mov ss, ax"), (None, "bc007c", "mov sp, 0x7c00"),
        (None, "fb", "sti"),
        (None, "b80102", "mov ax, 0x0201            ; read, 1 sector"),
        (None, "b9" + _le16(JOURNAL_SECTOR), "mov cx, sector"),
        (None, "ba8000", "mov dx, 0x0080            ; first hard disk"),
        (None, "bb" + _le16(_BUF), "mov bx, buffer"),
        (None, "cd13", "int 0x13"),
        (None, ("be", "msg_found"), "mov si, msg_found"), (None, ("e8", "puts"), "call puts"),
        (None, "be" + _le16(_BUF), "mov si, buffer"), (None, ("e8", "puts"), "call puts"),
        ("loop", "bf" + _le16(_BUF + 9), "mov di, buffer+9          ; the last digit"),
        ("digit", "fe05", "inc byte [di]"), (None, "803d3a", "cmp byte [di], '9'+1"),
        (None, ("72", "write"), "jb write"), (None, "c60530", "mov byte [di], '0'"),
        (None, "4f", "dec di"), (None, ("eb", "digit"), "jmp digit"),
        ("write", "b80103", "mov ax, 0x0301            ; write, 1 sector"),
        (None, "b9" + _le16(JOURNAL_SECTOR), "mov cx, sector"),
        (None, "ba8000", "mov dx, 0x0080"), (None, "bb" + _le16(_BUF), "mov bx, buffer"),
        (None, "cd13", "int 0x13"),
        (None, ("72", "loop"), "jc loop                   ; not written: not acknowledged"),
        (None, ("be", "msg_ack"), "mov si, msg_ack"), (None, ("e8", "puts"), "call puts"),
        (None, "be" + _le16(_BUF), "mov si, buffer"), (None, ("e8", "puts"), "call puts"),
        (None, ("eb", "loop"), "jmp loop"),
        ("puts", "baf803", "mov dx, 0x3f8"), ("next", "ac", "lodsb"), (None, "84c0", "test al, al"),
        (None, ("74", "done"), "jz done"), (None, "ee", "out dx, al"), (None, ("eb", "next"), "jmp next"),
        ("done", "c3", "ret"),
    ]
    size = {"be": 3, "e8": 3, "72": 2, "74": 2, "eb": 2}
    at, pos = {}, 0
    for label, code, _ in body:
        if label:
            at[label] = pos
        pos += size[code[0]] if isinstance(code, tuple) else len(code) // 2
    at["msg_found"], at["msg_ack"] = pos, pos + len(MSG_FOUND)
    out, pos = [], 0
    for _, code, mnemonic in body:
        if isinstance(code, tuple):
            op, target = code
            end = pos + size[op]
            if op == "be":
                code = op + _le16(ORG + at[target])
            elif op == "e8":
                code = op + _le16((at[target] - end) & 0xFFFF)
            else:
                rel = at[target] - end
                assert -128 <= rel <= 127, mnemonic
                code = op + bytes([rel & 0xFF]).hex()
        out.append((bytes.fromhex(code), mnemonic))
        pos += len(out[-1][0])
    return out, MSG_FOUND + MSG_ACK


def journal_disk_image(size: int = 1 << 20) -> bytes:
    """The journal boot sector, and the counter at zero in its sector."""
    program, messages = _journal_program()
    code = b"".join(c for c, _ in program) + messages
    sector = code.ljust(510, b"\0") + b"\x55\xaa"
    counter = b"0000000000\r\n\0".ljust(512, b"\0")
    return (sector + b"\0" * 512 * (JOURNAL_SECTOR - 2) + counter).ljust(size, b"\0")
