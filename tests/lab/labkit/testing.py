"""What the storage and cluster tests do on the lab: run rbdvm on a node, make disk files,
read and write RBD images directly (as client.rbdvm, like every rbdvm command)."""

import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from labkit import guest, node, once, ops
from labkit import layout as L
from labkit.procs import wait_for
from labkit.storagefence import blocklisted  # noqa: F401 - the cluster tests' too

FILES = L.SHARED / "files"
RBDTOOL = str(L.LAB_SRC / "labkit" / "rbdtool.py")
PYTHON = str(L.VENV / "bin" / "python")


_HANDED_OUT: list = []


def unique(prefix: str = "t") -> str:
    """A VM or snapshot name (letters and digits) no other test uses."""
    name = prefix + uuid.uuid4().hex[:8]
    _HANDED_OUT.append(name)
    return name


def handed_out() -> int:
    """A mark in the names `unique` gave this process (see `names_since`)."""
    return len(_HANDED_OUT)


def names_since(mark: int) -> list:
    """The names `unique` gave since `mark`: a test's own, even with tests of other files
    running beside it in another process (a cleanup by name pattern would take theirs)."""
    return _HANDED_OUT[mark:]


def rbdvm(*args, node: str = "node1", env=None, check: bool = True) -> subprocess.CompletedProcess:
    """`rbdvm ARGS` on a node, exactly as an operator types it there."""
    prefix = ["env"] + [f"{k}={v}" for k, v in (env or {}).items()] if env else []
    res = ops.on(node, *prefix, "rbdvm", *map(str, args), check=False, timeout=300)
    if check and res.returncode != 0:
        # under --json the error is on stdout
        raise AssertionError(f"rbdvm {' '.join(map(str, args))} failed ({res.returncode}): {res.stderr}{res.stdout}")
    return res


def rbdvm_json(*args, node: str = "node1"):
    return json.loads(rbdvm(*args, "--json", node=node).stdout)


def rbdvm_error(code: int, *args, node: str = "node1") -> str:
    """Run a command that must fail with exit code `code`; return its message."""
    res = rbdvm(*args, node=node, check=False)
    assert res.returncode == code, f"expected exit {code}, got {res.returncode}: {res.stdout} {res.stderr}"
    assert "Traceback" not in res.stderr, res.stderr
    assert res.stderr.startswith("Error: "), res.stderr
    return res.stderr


def rbdvm_error_json(code: int, *args, node: str = "node1") -> dict:
    """Run a command with --json that must fail with exit code `code`; return its error as
    the JSON on stdout gives it (stderr stays empty)."""
    res = rbdvm(*args, "--json", node=node, check=False)
    assert res.returncode == code, f"expected exit {code}, got {res.returncode}: {res.stdout} {res.stderr}"
    assert res.stderr == "", res.stderr
    error = json.loads(res.stdout)["error"]
    assert error["exit_code"] == code
    return error


def rbdtool(*args, node: str = "node1", ns: str = "-") -> str:
    return ops.on(node, PYTHON, RBDTOOL, args[0], ns, *map(str, args[1:])).stdout.strip()


def read_bytes(image: str, offset: int, length: int, ns: str = "-") -> bytes:
    return bytes.fromhex(rbdtool("read", image, offset, length, ns=ns))


def write_bytes(image: str, offset: int, byte: int, length: int, ns: str = "-") -> None:
    rbdtool("write", image, offset, byte, length, ns=ns)


def files_dir() -> Path:
    FILES.mkdir(parents=True, exist_ok=True)
    return FILES


def boot_disk(name: str = "boot.raw") -> str:
    return str(once.made_once(files_dir() / name, lambda tmp: tmp.write_bytes(guest.disk_image())))


def base_xml(vm: str, uuid_: str = None, interface: bool = True) -> str:
    path = files_dir() / f"{vm}.base.xml"
    path.write_text(guest.base_xml("ignored", str(ops.serial_path(vm)), uuid_, interface=interface))
    return str(path)


def qcow2(name: str, size: str, writes=()) -> str:
    """A qcow2 file of virtual `size` with (offset, length, byte) data written by qemu-io."""
    path = files_dir() / name
    path.unlink(missing_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    cmds = []
    for offset, length, byte in writes:
        cmds += ["-c", f"write -P {byte} {offset} {length}"]
    if cmds:
        subprocess.run(["qemu-io", "-f", "qcow2", *cmds, str(path)], check=True, capture_output=True)
    return str(path)


def raw_file(name: str, size: int, writes=()) -> str:
    path = files_dir() / name
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, length, byte in writes:
            f.seek(offset)
            f.write(bytes([byte]) * length)
    return str(path)


def force_remove(vm: str, ns: str = None, node: str = "node1") -> None:
    """Cleanup after a test: a VM under Pacemaker is disabled (stopped through the cluster)
    and removed; a guest started by hand is ended wherever it runs, then the VM removed.
    `node`: where rbdvm runs (one that is up)."""
    extra = ["--namespace", ns] if ns else []
    first = rbdvm("remove", "--force", vm, *extra, node=node, check=False)
    if first.returncode in (0, 3):
        return
    last = [first]
    for n in L.HYPERVISORS:
        if node_up(n) and vm in ops.running(n):
            ops.virsh(n, "destroy", vm, check=False)
    # a QEMU killed by a test (or with its crashed node) leaves its RBD watch ~30 s: that
    # client is blocklisted, as the guard does for a fenced node's. A cluster resource being
    # deleted holds the VM: retry until it is gone, so no test leaves a VM behind
    from labkit.procs import wait_for

    def removed():
        # --force again: a disable cut short (a stop or the cluster's settling not done in
        # time) leaves the VM's resource, which a plain remove refuses
        last[0] = rbdvm("remove", "--force", vm, *extra, node=node, check=False)
        if last[0].returncode in (0, 3):
            return True
        if not ns:
            _release_dead_clients(vm, node)
        return False
    assert wait_for(60, removed, 1.0), \
        f"could not remove VM {vm} after the test: the first try said {first.stderr.strip()!r}, " \
        f"the last {last[0].stderr.strip()!r}"


def node_up(n: str) -> bool:
    from labkit import node as labnode

    return labnode.REG.alive(f"pacemakerd-{n}")


def _release_dead_clients(vm: str, node: str) -> None:
    """Blocklist (that client instance only, for 5 minutes) each watch on the VM's images
    held from a node where no QEMU of the VM runs: a dead QEMU's."""
    from labkit import ceph

    images = [i for i in ops.rbd(node, "ls", L.POOL, check=False).split() if i.endswith(f"_{vm}")]
    live = {L.IP[n] for n in L.HYPERVISORS if qemu_pids(n, vm)}
    for image in images:
        try:
            entities = ops.watchers(node, image, entities=True)
        except Exception:       # noqa: BLE001 - removed meanwhile: nothing to release
            continue
        for entity in entities:
            if entity.split(":")[0] not in live:
                ceph.admin("osd", "blocklist", "add", entity, "300", check=False)


def force_remove_all(vms, node: str = "node1") -> None:
    """force_remove of several VMs at once (each a cluster stop to wait for: one at a time
    they add up in every clean-up); every one is tried, the first failure raised after."""
    from concurrent.futures import ThreadPoolExecutor

    vms = list(vms)
    with ThreadPoolExecutor(max_workers=max(1, len(vms))) as pool:
        futures = [pool.submit(force_remove, vm, None, node) for vm in vms]
    for f in futures:
        f.result()


def start_vm(vm: str, node: str = "node1", ns: str = None) -> None:
    """Run the VM's stored XML on a node with libvirt (the agent's job, later)."""
    extra = ["--namespace", ns] if ns else []
    xml = rbdvm("metadata", "get", vm, "xml", *extra, node=node).stdout
    path = files_dir() / f"{vm}.run.xml"
    path.write_text(xml)
    ops.serial_path(vm).unlink(missing_ok=True)
    ops.virsh(node, "create", str(path))
    ops.wait_serial(vm, "READY")


AGENT = "/usr/lib/ocf/resource.d/rbdvm/VirtualDomain"


def agent(node: str, action: str, timeout_ms: int = None, **params) -> subprocess.CompletedProcess:
    """Run the installed agent on a node the way Pacemaker does (OCF_RESKEY_*), by hand."""
    env = ["OCF_ROOT=/usr/lib/ocf"] + [f"OCF_RESKEY_{k}={v}" for k, v in params.items()]
    if timeout_ms:
        env.append(f"OCF_RESKEY_CRM_meta_timeout={timeout_ms}")
    return ops.on(node, "env", *env, AGENT, action, check=False, timeout=300)


def qemu_pids(node: str, vm: str) -> list:
    """PIDs of the QEMU processes of domain `vm` running on `node`."""
    from labkit import node as labnode

    net = Path(f"/proc/{labnode.holder(node)}/ns/net").readlink()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            args = (d / "cmdline").read_bytes().split(b"\0")
            if b"qemu" in args[0] and f"guest={vm},".encode() in b" ".join(args) \
                    and (d / "ns" / "net").readlink() == net:
                found.append(int(d.name))
        except OSError:
            continue
    return found


def make_vm(vm: str, **opts) -> None:
    """A stopped VM booting the lab's guest, created with rbdvm on node1."""
    extra = []
    for k, v in opts.items():
        extra += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
    rbdvm("create", "--disabled", vm, "--image", boot_disk(), "--xml", base_xml(vm), *extra)


@pytest.fixture(name="vm")
def stopped_vm():
    """A stopped VM booting the lab's guest, removed afterwards (the agent tests' `vm`)."""
    name = unique()
    make_vm(name)
    yield name
    force_remove(name)


def exit_reason(res) -> str:
    """The agent's `ocf-exit-reason:` line (the last one), which must be there."""
    lines = [line for line in res.stderr.splitlines() if line.startswith("ocf-exit-reason:")]
    assert lines, f"no exit reason in: {res.stderr}"
    return lines[-1]


# ------------------------------------------------------------------ VMs under the lab's cluster
N1, N2 = L.HYPERVISORS


def other(n):
    return N2 if n == N1 else N1


def where(rsc):
    return ops.resource_node(N1, rsc) or ops.resource_node(N2, rsc)


def history(rsc):
    return ops.operations(N1 if node.REG.alive(f"pacemakerd-{N1}") else N2, rsc)


def fail_count(rsc, on):
    res = ops.on(N1, "crm_failcount", "--query", "-r", rsc, "-N", on, check=False)
    value = res.stdout.strip().rsplit("value=", 1)[-1]
    return 0 if value in ("", "0", "(null)") else int(value) if value.isdigit() else value


def cluster_vm_lifecycle():
    """A VM made with rbdvm and put under Pacemaker with pcs, as the README shows; removed
    afterwards (the plugin's fixture `cluster_vm`)."""
    vm = unique()
    make_vm(vm, live_migration=True)
    ops.on(N1, "pcs", "resource", "create", vm, "ocf:rbdvm:VirtualDomain", f"vm={vm}",
           "migration_transport=tcp", "meta", "allow-migrate=true",
           "op", "monitor", "interval=5s", "timeout=30s", "start", "timeout=90s")
    assert wait_for(60, lambda: where(vm) is not None), "Pacemaker started the VM"
    ops.wait_serial(vm, "READY")
    yield vm
    live = N1 if node.REG.alive(f"pacemakerd-{N1}") else N2
    ops.on(live, "crm_resource", "--clear", "-r", vm, check=False)
    ops.on(live, "crm_resource", "--meta", "-r", vm, "-p", "target-role", "-v", "Stopped", check=False)
    wait_for(60, lambda: where(vm) is None)
    ops.on(live, "pcs", "resource", "delete", vm, "--force", check=False)
    ops.on(live, "crm_resource", "--cleanup", "-r", vm, check=False)
    force_remove(vm)


def pacemaker_log(n: str) -> str:
    return (L.node_dir(n) / "log-pacemaker" / "pacemaker.log").read_text(errors="replace")


# ------------------------------------------------------------------ interrupted commands
SHORT_LEASE = {"RBDVM_LEASE_SECONDS": "2"}


def killed_at(step, *args):
    """Run rbdvm so that it SIGKILLs itself at `step` (a power cut there); once a previous
    killed run's lease has expired, if one is still held."""
    deadline = time.monotonic() + 20
    while True:
        res = rbdvm(*args, env={**SHORT_LEASE, "RBDVM_FAULT_AT": step}, check=False)
        if res.returncode != 4 or "is busy" not in res.stderr or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert res.returncode == -signal.SIGKILL or res.returncode == 128 + signal.SIGKILL, \
        f"{step}: expected a kill, got {res.returncode}: {res.stderr}"


def rerun(*args):
    """Re-run once the killed command's lease has expired; busy meanwhile, never broken."""
    deadline = time.monotonic() + 20
    while True:
        res = rbdvm(*args, check=False)
        busy = "is busy" in res.stderr or '"code": "VM_BUSY"' in res.stdout     # --json: the error on stdout
        if res.returncode != 4 or not busy or time.monotonic() > deadline:
            assert res.returncode == 0, res.stdout + res.stderr
            return res
        time.sleep(0.5)


def console_exchange(n: str, vm: str, line: str, until, timeout: float = 30) -> str:
    """Run `rbdvm console VM` on node `n` in a pseudo-terminal, as an operator does: once
    virsh says it is attached, type `line` and Enter, read until `until(text after the
    attach)` is true, then leave with Ctrl-]. Returns everything read."""
    import os
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:
        lab = str(L.LAB_SRC / "lab")
        os.execv(lab, [lab, "exec", n, "--", "rbdvm", "console", vm])
    out, sent = b"", False
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    break
            attached = out.split(b"Escape character", 1)
            if not sent and len(attached) == 2:
                time.sleep(0.5)
                os.write(fd, line.encode() + b"\r")
                sent = True
            if sent and until(attached[-1].decode(errors="replace")):
                break
        os.write(fd, b"\x1d")
        wait_for(10, lambda: os.waitpid(pid, os.WNOHANG)[0] != 0)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
    return out.decode(errors="replace")


# ------------------------------------------------------------------ a writing guest
# libvirt over TCP between the lab's nodes (no ssh), and a stop that does not wait for an
# ACPI-less guest
LIBVIRT_TCP = ("--pacemaker-params", "migration_transport=tcp", "--pacemaker-params", "force_stop=true")


def journal_vm(vm: str, node_: str = None) -> None:
    """A Linux guest in journal mode (labkit.linuxguest: a counter written through to its
    raw RBD disk, ACK n on its serial port once n is on the disk) created with rbdvm, live
    migration allowed, enabled (pinned to `node_` first when given, then unpinned: it stays
    there); returns once it has acknowledged a write."""
    from labkit import linuxguest

    kernel, initrd = linuxguest.build()
    xml = files_dir() / f"{vm}.base.xml"
    xml.write_text(linuxguest.domain_xml("ignored", str(ops.serial_path(vm)), kernel, initrd, journal=True))
    ops.serial_path(vm).unlink(missing_ok=True)
    rbdvm("create", vm, "--image", raw_file(f"{vm}.raw", 1 << 20), "--xml", str(xml), "--live-migration",
          *LIBVIRT_TCP, *(("--pinned-host", node_) if node_ else ()))
    if node_:
        rbdvm("unpin", vm)
    assert wait_for(90, lambda: acked(vm), 0.2), "the guest acknowledges writes"


def acked(vm: str) -> list:
    """The values the journal guest has acknowledged so far, every boot together."""
    from labkit import linuxguest

    return linuxguest.journal_acked(ops.serial_text(vm))


def journal_boots(vm: str) -> list:
    """[(found at boot, [values acknowledged in that boot])] of a journal guest."""
    out = []
    for line in ops.serial_text(vm).splitlines():
        w = line.split()
        if len(w) == 2 and w[0] == "FOUND" and w[1].isdigit():
            out.append((int(w[1]), []))
        elif len(w) == 2 and w[0] == "ACK" and w[1].isdigit() and out:
            out[-1][1].append(int(w[1]))
    return out
