"""A small real Linux guest for the lab, built from Debian packages at first use and cached
(CACHE, keyed by the package versions): Debian's cloud kernel booted directly by QEMU, an
initramfs of busybox, the virtio modules and qemu-guest-agent (with the libraries it links,
taken from this host), and an ext4 filesystem on its first disk. It boots under TCG in a few
seconds, says READY on its serial port, starts the guest agent on its virtio-serial channel
(with a freeze hook that prints FSFREEZE freeze / thaw on the serial port), mounts its disk
and writes files to it for ever. In twin mode it writes a counter to both its raw disks
instead, one after the other, for ever (twin_counters reads them): a snapshot of both at one
instant shows them equal, or the first one ahead by one. In journal mode it writes a counter
to its raw disk, through to the disk, and says ACK n on its serial port after each value is
written; booting, it says FOUND n, what the disk holds (journal_found, journal_acked): a
failover that lost nothing acknowledged finds at least the last value acknowledged.

The kernel and initramfs are host files a definition names: the lab's device policy allows
CACHE among the firmware directories (configs.device_policy).
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import once

# beside the lab, not in it (lab down keeps it); never under /var, which each node sees through
# an overlay that would keep showing a file replaced after the node started
CACHE = Path("/tmp/rbdvm-lab-cache/linux-guest")
PACKAGES = ("linux-image-cloud-amd64", "busybox-static", "qemu-guest-agent", "pacemaker-remote")
# in load order (each after what its .modinfo `depends=` names)
MODULES = ("virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
           "virtio_blk", "virtio_console", "failover", "net_failover", "virtio_net")
# Pacemaker's key for its remote nodes (every node has the same one): the guest node's too
AUTHKEY = Path("/etc/pacemaker/authkey")

INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /mnt /tmp /run /var/run
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in {modules}; do insmod /lib/modules/$m.ko; done
head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n' > /run/boot-id
echo READY > /dev/ttyS0
# on the cluster's network (rbdvm.ip=ADDRESS/PREFIX): a Pacemaker guest node, its
# pacemaker-remoted listening on 3121 for the cluster
ip=""
for w in $(cat /proc/cmdline); do case $w in rbdvm.ip=*) ip=${{w#rbdvm.ip=}} ;; esac; done
if [ -n "$ip" ]; then
  ip link set lo up
  # the guest says where it is now (gratuitous ARP, as a live migration's announce does):
  # booted on another hypervisor after a failover, it is silent otherwise, and the bridges
  # kept sending its frames to the old host for minutes (the cluster could not reach its
  # pacemaker-remoted; seen on the lab after a partition)
  echo 1 > /proc/sys/net/ipv4/conf/all/arp_notify
  ip addr add $ip dev eth0 && ip link set eth0 up && echo "NET $ip" > /dev/ttyS0
  (for i in 1 2 3; do arping -U -c 1 -I eth0 ${{ip%/*}} > /dev/null 2>&1; sleep 1; done) &
  mkdir -p /dev/shm /var/lib/pacemaker /var/log/pacemaker /var/run/crm
  mount -t tmpfs shm /dev/shm
  PCMK_logfile=/var/log/pacemaker/remoted.log /usr/sbin/pacemaker-remoted > /dev/null 2>&1 &
  echo "REMOTED $(cat /run/boot-id)" > /dev/ttyS0
fi
if grep -q rbdvm.twin /proc/cmdline; then
  # both raw disks at once: a counter (10 digits at byte 512) to vda, then to vdb, synced
  i=0
  while true; do
    i=$((i+1))
    for d in vda vdb; do printf '%010d' $i | dd of=/dev/$d bs=512 seek=1 conv=notrunc,fsync 2>/dev/null; done
  done
fi
if grep -q rbdvm.journal /proc/cmdline; then
  # a counter at byte 512 of vda, each value written through to the disk (fsync) before the
  # guest says ACK n: n is acknowledged. At boot it says FOUND n, the value the disk holds.
  n=$(dd if=/dev/vda bs=512 skip=1 count=1 2>/dev/null | head -c 10 | tr -cd 0-9 | sed 's/^0*//')
  i=${{n:-0}}
  echo "FOUND $i" > /dev/ttyS0
  while true; do
    i=$((i+1))
    printf '%010d' $i | dd of=/dev/vda bs=512 seek=1 conv=notrunc,fsync 2>/dev/null && echo "ACK $i" > /dev/ttyS0
  done
fi
port=""
for d in /sys/class/virtio-ports/*; do
  [ "$(cat $d/name 2>/dev/null)" = org.qemu.guest_agent.0 ] && port=/dev/$(basename $d)
done
mount -t ext4 /dev/vda /mnt && echo MOUNTED > /dev/ttyS0
if [ -n "$port" ] && ! grep -q rbdvm.noagent /proc/cmdline; then
  /usr/sbin/qemu-ga -m virtio-serial -p $port -F/etc/fsfreeze-hook -l /dev/ttyS0 -d && echo AGENT > /dev/ttyS0
fi
i=0
while true; do
  i=$((i+1))
  echo "$i $(head -c 2000 /dev/urandom | base64 -w0)" > /mnt/f$((i % 64)).tmp
  mv /mnt/f$((i % 64)).tmp /mnt/f$((i % 64))
  echo $i > /mnt/counter
done
"""

HOOK = """#!/bin/sh
echo "FSFREEZE $1" > /dev/ttyS0
"""

# ocf:rbdvmlab:Marker, a resource Pacemaker runs inside the guest node: while it is active
# the guest says MARKER <its boot id> <its clock> on its serial port every second (and
# MARKERSTART / MARKERSTOP <boot id> when Pacemaker starts or stops it)
MARKER = """#!/bin/sh
STATE=/run/marker.active
case "$1" in
start)
  echo "MARKERSTART $(cat /run/boot-id)" > /dev/ttyS0
  touch $STATE
  (while [ -e $STATE ]; do echo "MARKER $(cat /run/boot-id) $(date +%s)" > /dev/ttyS0; sleep 1; done) \
    < /dev/null > /dev/null 2>&1 &
  exit 0 ;;
stop) rm -f $STATE; echo "MARKERSTOP $(cat /run/boot-id)" > /dev/ttyS0; exit 0 ;;
monitor|status) [ -e $STATE ] && exit 0; exit 7 ;;
validate-all) exit 0 ;;
meta-data)
  cat <<'END'
<?xml version="1.0"?>
<resource-agent name="Marker" version="1.0">
  <version>1.1</version>
  <longdesc lang="en">Says on the lab guest's serial port that it is active.</longdesc>
  <shortdesc lang="en">lab marker</shortdesc>
  <parameters/>
  <actions>
    <action name="start" timeout="20s"/>
    <action name="stop" timeout="20s"/>
    <action name="monitor" timeout="20s" interval="5s"/>
    <action name="meta-data" timeout="5s"/>
    <action name="validate-all" timeout="5s"/>
  </actions>
</resource-agent>
END
  exit 0 ;;
*) exit 3 ;;
esac
"""


def _versions() -> str:
    """What the cached guest is made of: the packages' versions and this file's scripts."""
    import hashlib

    out = subprocess.run(["apt-cache", "policy", *PACKAGES], capture_output=True, text=True, check=True).stdout
    made_of = (INIT + HOOK + MARKER + " ".join(MODULES)).encode() + AUTHKEY.read_bytes()
    scripts = hashlib.sha256(made_of).hexdigest()[:16]
    return "".join(line.strip() for line in out.splitlines() if "Candidate" in line) + " " + scripts


def _image_package() -> str:
    out = subprocess.run(["apt-cache", "depends", "linux-image-cloud-amd64"], capture_output=True, text=True,
                         check=True).stdout
    return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                if line.strip().startswith("Depends: linux-image-"))


def _cpio(root: Path, out: Path) -> None:
    """root as an uncompressed newc cpio archive (the kernel's initramfs format)."""
    ino = 1

    def header(name: bytes, mode: int, size: int, nlink: int = 1) -> bytes:
        nonlocal ino
        ino += 1
        fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name) + 1, 0]
        h = b"070701" + b"".join(b"%08X" % f for f in fields) + name + b"\0"
        return h + b"\0" * (-len(h) % 4)

    with open(out, "wb") as f:
        for path in sorted(root.rglob("*")):
            rel = str(path.relative_to(root)).encode()
            st = path.lstat()
            if path.is_symlink():
                data = os.readlink(path).encode()
            elif path.is_dir():
                data = b""
            else:
                data = path.read_bytes()
            f.write(header(rel, st.st_mode, len(data), 2 if path.is_dir() else 1))
            f.write(data + b"\0" * (-len(data) % 4))
        f.write(header(b"TRAILER!!!", 0, 0))


def build(guest_node: bool = False) -> tuple:
    """(kernel, initramfs) paths, built now unless the cache has them for these versions;
    `guest_node`: the initramfs with pacemaker-remoted (its libraries weigh ~45 MB, which
    every other guest would otherwise copy into its memory at boot)."""
    stamp = CACHE / "versions"
    kernel, initrds = CACHE / "vmlinuz", (CACHE / "initramfs.cpio", CACHE / "initramfs-remote.cpio")
    versions = _versions()

    def cached():
        return stamp.exists() and stamp.read_text() == versions and all(p.exists() for p in (kernel, *initrds))
    if not cached():
        with once.locked(stamp):       # tests side by side: one builds, the others wait for it
            if not cached():
                _build(kernel, *initrds)
                stamp.write_text(versions)
    return str(kernel), str(initrds[1] if guest_node else initrds[0])


def _build(kernel: Path, initrd: Path, remote_initrd: Path) -> None:
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        t = Path(tmp)
        debs, ex, root = t / "debs", t / "x", t / "root"
        debs.mkdir()
        subprocess.run(["apt-get", "download", "-q", _image_package(), *PACKAGES[1:]],
                       cwd=debs, check=True, capture_output=True)
        for deb in debs.iterdir():
            subprocess.run(["dpkg-deb", "-x", str(deb), str(ex)], check=True)
        for d in ("bin", "lib/modules", "usr/sbin", "etc", "lib64", "lib/x86_64-linux-gnu"):
            (root / d).mkdir(parents=True, exist_ok=True)
        shutil.copy(ex / "bin" / "busybox", root / "bin" / "busybox")
        (kdir,) = (ex / "lib" / "modules").iterdir()
        found = {p.stem: p for p in kdir.rglob("*.ko")}
        for m in MODULES:
            shutil.copy(found[m], root / "lib" / "modules" / f"{m}.ko")
        shutil.copy(ex / "usr" / "sbin" / "qemu-ga", root / "usr" / "sbin" / "qemu-ga")
        _copy_libraries(ex / "usr" / "sbin" / "qemu-ga", root)
        (root / "init").write_text(INIT.format(modules=" ".join(MODULES)))
        (root / "init").chmod(0o755)
        (root / "etc" / "fsfreeze-hook").write_text(HOOK)
        (root / "etc" / "fsfreeze-hook").chmod(0o755)
        (vmlinuz,) = (ex / "boot").glob("vmlinuz-*")
        shutil.copy(vmlinuz, CACHE / "vmlinuz.new")
        _cpio(root, CACHE / "initramfs.new")
        shutil.copy(ex / "usr" / "sbin" / "pacemaker-remoted", root / "usr" / "sbin" / "pacemaker-remoted")
        _copy_libraries(ex / "usr" / "sbin" / "pacemaker-remoted", root)
        _guest_node_files(root)
        _cpio(root, CACHE / "initramfs-remote.new")
    os.replace(CACHE / "vmlinuz.new", kernel)
    os.replace(CACHE / "initramfs.new", initrd)
    os.replace(CACHE / "initramfs-remote.new", remote_initrd)


def _copy_libraries(program: Path, root: Path) -> None:
    """The shared libraries `program` links, taken from this host (the same Debian release)."""
    libs = subprocess.run(["ldd", str(program)], capture_output=True, text=True, check=True).stdout
    for line in libs.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if path.startswith("/"):
            dest = root / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(os.path.realpath(path), dest)


def _guest_node_files(root: Path) -> None:
    """What pacemaker-remoted needs besides its libraries: the cluster's authkey, the users
    and groups its IPC is for, and the resource agent it runs here."""
    import grp
    import pwd

    (root / "etc" / "pacemaker").mkdir(parents=True, exist_ok=True)
    shutil.copy(AUTHKEY, root / "etc" / "pacemaker" / "authkey")
    (root / "etc" / "pacemaker" / "authkey").chmod(0o400)
    user, group = pwd.getpwnam("hacluster"), grp.getgrnam("haclient")
    (root / "etc" / "passwd").write_text(f"root:x:0:0:root:/:/bin/sh\n"
                                         f"hacluster:x:{user.pw_uid}:{group.gr_gid}::/:/bin/false\n")
    (root / "etc" / "group").write_text(f"root:x:0:\nhaclient:x:{group.gr_gid}:hacluster\n")
    agent = root / "usr" / "lib" / "ocf" / "resource.d" / "rbdvmlab" / "Marker"
    agent.parent.mkdir(parents=True, exist_ok=True)
    agent.write_text(MARKER)
    agent.chmod(0o755)


def disk_image(path: str, size: int = 64 << 20) -> None:
    """An ext4 filesystem filling a raw disk file (no partition table)."""
    with open(path, "wb") as f:
        f.truncate(size)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "rbdvmlab", path], check=True, capture_output=True)


def twin_counters(system: bytes, data: bytes) -> tuple:
    """The counters a twin-mode guest left at byte 512 of its two disks (their first 1 KiB)."""
    return tuple(int(d[512:522].decode() or 0) if d[512:522].strip(b"\0") else 0 for d in (system, data))


def markers(serial: str) -> list:
    """[(boot id, guest clock)] of every second a guest node's Marker resource was active."""
    return [(w[1], int(w[2])) for w in (line.split() for line in serial.splitlines())
            if len(w) == 3 and w[0] == "MARKER" and w[2].isdigit()]


def journal_acked(serial: str) -> list:
    """The values a journal-mode guest acknowledged, in order (the last line may be cut)."""
    return [int(w[1]) for w in (line.split() for line in serial.splitlines()[:-1])
            if len(w) == 2 and w[0] == "ACK" and w[1].isdigit()]


def journal_found(serial: str) -> list:
    """What a journal-mode guest found on its disk at each boot, in order."""
    return [int(w[1]) for w in (line.split() for line in serial.splitlines())
            if len(w) == 2 and w[0] == "FOUND" and w[1].isdigit()]


def domain_xml(name: str, serial_log: str, kernel: str, initrd: str, agent: bool = True, twin: bool = False,
               journal: bool = False, address: str | None = None, memory_mib: int = 192) -> str:
    """The Linux guest's base definition: i440fx, 192 MiB (`memory_mib`), direct kernel boot, a pty serial
    logged to `serial_log`, and a QEMU guest agent channel (`agent`: the agent runs; `twin`:
    the counter on both disks, no agent; `journal`: the acknowledged counter, no agent).
    `address` (ADDRESS/PREFIX): on the hypervisor's bridge with that address, running
    pacemaker-remoted (a Pacemaker guest node)."""
    from lxml import etree

    dom = etree.Element("domain", type="qemu")
    etree.SubElement(dom, "name").text = name
    etree.SubElement(dom, "memory", unit="MiB").text = str(memory_mib)
    etree.SubElement(dom, "vcpu").text = "1"
    os_ = etree.SubElement(dom, "os")
    etree.SubElement(os_, "type", arch="x86_64", machine="pc").text = "hvm"
    etree.SubElement(os_, "kernel").text = kernel
    etree.SubElement(os_, "initrd").text = initrd
    etree.SubElement(os_, "cmdline").text = "console=ttyS0 quiet panic=-1 rdinit=/init" + \
        ("" if agent and not (twin or journal) else " rbdvm.noagent") + (" rbdvm.twin" if twin else "") + \
        (" rbdvm.journal" if journal else "") + (f" rbdvm.ip={address}" if address else "")
    etree.SubElement(etree.SubElement(dom, "features"), "acpi")
    for event, action in (("on_poweroff", "destroy"), ("on_reboot", "destroy"), ("on_crash", "destroy")):
        etree.SubElement(dom, event).text = action
    devices = etree.SubElement(dom, "devices")
    etree.SubElement(devices, "emulator").text = "/usr/bin/qemu-system-x86_64"
    serial = etree.SubElement(devices, "serial", type="pty")
    etree.SubElement(serial, "log", file=serial_log, append="on")
    etree.SubElement(serial, "target", port="0")
    if address:
        nic = etree.SubElement(devices, "interface", type="bridge")
        etree.SubElement(nic, "source", bridge="br0")
        etree.SubElement(nic, "model", type="virtio")
    channel = etree.SubElement(devices, "channel", type="unix")
    etree.SubElement(channel, "target", type="virtio", name="org.qemu.guest_agent.0")
    etree.SubElement(devices, "memballoon", model="none")
    return etree.tostring(dom, pretty_print=True, encoding="unicode")
