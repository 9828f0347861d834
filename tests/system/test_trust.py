"""A Ceph key is not root (docs/security.md): every attack here is made with nothing but the
nodes' `client.rbdvm` key (`rbd image-meta set`, as another tool sharing the pool, a backup
host or a leaked key would), and each must end with nothing run, a clear reason, the VM's
data untouched, and, where the definition is acceptable, the VM running again after
`rbdvm trust`.
"""

import json

import pytest
from lxml import etree

from labkit import guest, ops
from labkit import layout as L
from labkit.procs import wait_for
from labkit.testing import (
    PYTHON,
    agent,
    base_xml,
    boot_disk,
    exit_reason,
    files_dir,
    force_remove,
    make_vm,
    qemu_pids,
    rbdvm,
    rbdvm_error,
    rbdvm_json,
    read_bytes,
    unique,
    where,
    write_bytes,
)

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("agent_installed")]
N1, N2 = L.HYPERVISORS
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
MEM64, MEM96 = '<memory unit="MiB">64</memory>', '<memory unit="MiB">96</memory>'
AT = 256 << 10      # inside the guest's 1 MiB disk, past its boot sector


def meta_get(vm: str, key: str) -> str:
    return ops.rbd(N1, "image-meta", "get", f"system_{vm}", key)


def meta_set(vm: str, key: str, value: str) -> None:
    """What anyone with the pool's client key can do: no rbdvm involved."""
    ops.rbd(N1, "image-meta", "set", f"system_{vm}", key, value)


def with_device(xml: str, build) -> str:
    root = etree.fromstring(xml.encode())
    build(root)
    return etree.tostring(root, encoding="unicode")


def _disk(source_type: str, attr: str, path: str, dev: str):
    def build(root):
        disk = etree.SubElement(root.find("devices"), "disk", type=source_type, device="disk")
        etree.SubElement(disk, "source", {attr: path})
        etree.SubElement(disk, "target", dev=dev, bus="virtio")
    return build


def _qemu_commandline(marker: str):
    def build(root):
        cmd = etree.SubElement(root, f"{{{QEMU_NS}}}commandline")
        etree.SubElement(cmd, f"{{{QEMU_NS}}}arg", value="-D")
        etree.SubElement(cmd, f"{{{QEMU_NS}}}arg", value=marker)
    return build


def _ethernet_script(marker: str):
    def build(root):
        iface = etree.SubElement(root.find("devices"), "interface", type="ethernet")
        etree.SubElement(iface, "script", path=marker)
    return build


def attacks(vm: str) -> dict:
    marker = str(L.SHARED / f"{vm}.pwned")
    return {
        "a host file as a disk (the node's Ceph keyring)":
            (_disk("file", "file", "/etc/ceph/ceph.client.rbdvm.keyring", "vdx"), "host's file"),
        "a QEMU command line": (_qemu_commandline(marker), "passthrough"),
        "a host block device": (_disk("block", "dev", "/dev/loop0", "vdy"), "host's block"),
        "an ethernet script": (_ethernet_script(marker), "host script"),
    }


@pytest.fixture
def vm():
    name = unique("tr")
    make_vm(name)
    yield name
    force_remove(name)


def runs_nowhere(name: str) -> bool:
    return not qemu_pids(N1, name) and not qemu_pids(N2, name)


@pytest.mark.side_by_side
def test_a_definition_changed_with_the_client_key_never_runs(vm):
    """Four definitions an attacker writes with `rbd image-meta set`: the agent refuses to
    start each (a configuration error: no retry elsewhere, no fence), enable refuses, trust
    refuses to sign it (device policy), the disk is untouched; an edit by root brings the VM
    back."""
    write_bytes(f"system_{vm}", AT, 0x5A, 4096)
    good = meta_get(vm, "xml")
    for what, (build, policy_word) in attacks(vm).items():
        meta_set(vm, "xml", with_device(good, build))
        res = agent(N1, "start", vm=vm)
        assert res.returncode == 6, (what, res.returncode, res.stderr)
        reason = exit_reason(res)
        assert f"VM {vm}" in reason and "not signed by this cluster" in reason and f"rbdvm trust {vm}" in reason, \
            (what, reason)
        assert runs_nowhere(vm), what
        assert not (L.SHARED / f"{vm}.pwned").exists(), what
        assert "not signed by this cluster" in rbdvm_error(6, "enable", vm), what
        refused = rbdvm_error(6, "trust", vm, "--yes")
        assert "breaks the device policy" in refused or "device policy" in refused, (what, refused)
        assert policy_word in refused, (what, refused)
        assert agent(N1, "validate-all", vm=vm).returncode == 6, what
        assert rbdvm_json("info", vm)["state"] == "untrusted", what
    assert read_bytes(f"system_{vm}", AT, 4096) == b"\x5A" * 4096, "the VM's data is untouched"
    # root gives it a clean definition: signed, it runs again
    rbdvm("edit", vm, "--xml", base_xml(vm))
    assert agent(N1, "start", vm=vm).returncode == 0
    ops.wait_serial(vm, "READY")
    assert agent(N1, "stop", vm=vm).returncode == 0


@pytest.mark.side_by_side
def test_a_signature_made_for_another_vm_or_another_cluster_is_refused(vm):
    other = unique("tr")
    make_vm(other)
    try:
        # VM other's signed definition, copied onto vm (its name edited to fit)
        copied = meta_get(other, "xml").replace(f"<name>{other}</name>", f"<name>{vm}</name>")
        meta_set(vm, "xml", copied)
        meta_set(vm, "_definition_sig", meta_get(other, "_definition_sig"))
        reason = exit_reason(agent(N1, "start", vm=vm))
        assert "does not match" in reason, reason
        assert runs_nowhere(vm)
    finally:
        force_remove(other)
    rbdvm("edit", vm, "--xml", base_xml(vm))     # root gives it its own definition again
    assert agent(N1, "validate-all", vm=vm).returncode == 0
    # signed with another cluster's secret: the key id says so
    script = (
        "import os, sys\n"
        "from rbdvm.helpers.ceph.session import Session\n"
        "from rbdvm.helpers.ceph import trust, vmstore\n"
        "from rbdvm.helpers.core import signing\n"
        "from rbdvm.helpers.core.settings import CephTarget\n"
        "vm = sys.argv[1]\n"
        "with Session(CephTarget()) as s:\n"
        "    md = vmstore.read_metadata(s, 'system_' + vm)\n"
        "    key = signing.SigningKey(os.urandom(64), 'another cluster')\n"
        "    sig = signing.sign(key, signing.DEFINITION, trust.binding(s, vm),\n"
        "                       signing.definition_data(md['xml'], md.get('_base_xml')))\n"
        "    print(sig, key.key_id)\n")
    path = files_dir() / f"{vm}.othersign.py"
    path.write_text(script)
    sig, other_id = ops.on(N1, PYTHON, str(path), vm).stdout.split()
    meta_set(vm, "_definition_sig", sig)
    reason = exit_reason(agent(N1, "start", vm=vm))
    assert "signed with another key" in reason and other_id in reason, reason
    assert runs_nowhere(vm)
    rbdvm("trust", vm, "--yes")
    assert agent(N1, "start", vm=vm).returncode == 0
    ops.wait_serial(vm, "READY")      # (before it, the guest ignores the ACPI button)
    assert agent(N1, "stop", vm=vm).returncode == 0


@pytest.mark.side_by_side
def test_a_tampered_snapshot_definition_is_not_rolled_back_to(vm):
    """The definition recorded with a snapshot, changed outside rbdvm: the rollback is refused
    before any disk changes; once root accepts that definition, the rollback restores it."""
    rbdvm("snapshot", "create", vm, "s1")
    write_bytes(f"system_{vm}", AT, 0x6B, 4096)      # after the snapshot
    key = "_definition_at_s1"
    recorded = json.loads(meta_get(vm, key))
    recorded["xml"] = recorded["xml"].replace(MEM64, MEM96)
    assert MEM96 in recorded["xml"], recorded["xml"]
    meta_set(vm, key, json.dumps(recorded))
    refused = rbdvm_error(6, "snapshot", "rollback", vm, "s1")
    assert "snapshot s1" in refused and f"rbdvm trust {vm} --snapshot s1" in refused, refused
    assert read_bytes(f"system_{vm}", AT, 4096) == b"\x6B" * 4096, "no disk was rolled back"
    assert rbdvm_json("info", vm)["state"] == "complete"
    shown = rbdvm("trust", vm, "--snapshot", "s1", "--yes").stdout
    assert MEM96 in shown and "SIGNATURE DOES NOT MATCH" in shown, shown
    rbdvm("snapshot", "rollback", vm, "s1")
    assert read_bytes(f"system_{vm}", AT, 4096) == b"\0" * 4096, "rolled back"
    assert MEM96 in meta_get(vm, "xml")
    assert agent(N1, "start", vm=vm).returncode == 0
    ops.wait_serial(vm, "READY")
    assert agent(N1, "stop", vm=vm).returncode == 0


@pytest.mark.side_by_side
def test_a_tampered_base_is_not_built_again(vm):
    """_base_xml changed outside rbdvm: set --disk-bus and disk add rebuild the definition
    from it, and refuse; nothing is made."""
    base = meta_get(vm, "_base_xml")
    xml = meta_get(vm, "xml")
    meta_set(vm, "_base_xml", with_device(base, _disk("file", "file", "/etc/corosync/authkey", "vdz")))
    for args in (("set", vm, "--disk-bus", "sata"), ("disk", "add", vm, "--size", "8M")):
        assert "not signed by this cluster" in rbdvm_error(6, *args), args
    assert meta_get(vm, "xml") == xml
    assert [d["name"] for d in rbdvm_json("info", vm)["disks"]] == [f"system_{vm}"], "no disk was made"
    assert "device policy" in rbdvm_error(6, "trust", vm, "--yes")


@pytest.mark.side_by_side
def test_tampered_settings_are_not_enabled(vm):
    """A setting changed outside rbdvm (here the resource's priority): enable refuses and
    writes nothing into the CIB; list and info say untrusted; after trust, enable works."""
    meta_set(vm, "_priority", "100")
    assert rbdvm_json("info", vm)["state"] == "untrusted"
    listed = {v["name"]: v for v in rbdvm_json("list")}
    assert listed[vm]["state"] == "untrusted", listed[vm]
    refused = rbdvm_error(6, "enable", vm)
    assert "settings" in refused and "not signed by this cluster" in refused, refused
    assert ops.on(N1, "crm_resource", "--query-xml", "-r", vm, check=False).returncode != 0, "not in the CIB"
    shown = rbdvm("trust", vm, "--yes").stdout
    assert "priority: 100" in shown, shown
    rbdvm("enable", vm)
    try:
        assert where(vm) is not None
    finally:
        rbdvm("disable", vm)


def test_an_upgrade_keeps_unsigned_vms_running_and_trust_first_lets_them_move():
    """VMs made before signatures carry none (as made by the previous rbdvm: their signature
    keys removed here). Running, they keep running (monitor never reads Ceph); a migrate or
    a drain is refused before anything moves (the start it ends in would be); after
    `trust --all`, the drain moves the VM live."""
    vm = unique("up")
    make_vm(vm, live_migration=True, pacemaker_params="migration_transport=tcp")
    try:
        rbdvm("enable", vm)
        ops.wait_serial(vm, "READY")
        start_node = where(vm)
        for key in ("_definition_sig", "_settings_sig"):
            ops.rbd(N1, "image-meta", "remove", f"system_{vm}", key)
        ops.wait_serial(vm, "READY")
        assert rbdvm_json("info", vm)["state"] == "untrusted"
        target = N2 if start_node == N1 else N1
        # a move would end in a refused start: refused before anything moves
        assert "not signed by this cluster" in rbdvm_error(6, "migrate", vm, target)
        refused = rbdvm_error(6, "node", "drain", start_node)
        assert vm in refused and f"rbdvm trust {vm}" in refused and "--force" in refused, refused
        assert not {n["name"]: n for n in rbdvm_json("node", "list")}[start_node]["drained"]
        # a monitor interval later it still runs where it ran, booted once
        assert not wait_for(12, lambda: where(vm) != start_node, 1.0)
        assert ops.boots(vm) == 1
        # (another test's VM the policy refuses would make the exit code 6: this one is signed)
        out = rbdvm("trust", "--all", "--yes", check=False).stdout
        assert f"VM {vm}: signed" in out, out
        rbdvm("node", "drain", start_node)
        assert where(vm) == target and ops.boots(vm) == 1, "drained live, not restarted"
    finally:
        rbdvm("node", "resume", N1, check=False)
        rbdvm("node", "resume", N2, check=False)
        rbdvm("disable", vm, check=False)
        force_remove(vm)


@pytest.mark.side_by_side
def test_a_guest_from_seapaths_template_passes_the_default_policy(vm):
    """SEAPATH's standard guest shape (q35, UEFI firmware, bridges, pty serial and console,
    guest-agent channel, watchdog) is created and signed under the default policy; the same
    with a serial written to a file outside the policy's directories is refused."""
    path = files_dir() / f"{vm}.seapath.xml"
    path.write_text(guest.seapath_like_base_xml("seapathlike"))
    name = unique("sp")
    try:
        rbdvm("create", name, "--image", boot_disk(), "--xml", path, "--disabled")
        assert rbdvm_json("info", name)["trust"] == "signed"
    finally:
        force_remove(name)
    hostile = files_dir() / f"{vm}.hostile.xml"
    hostile.write_text(with_device(path.read_text(), lambda root: etree.SubElement(
        etree.SubElement(root.find("devices"), "serial", type="file"), "source", path="/etc/shadow")))
    refused = rbdvm_error(6, "create", unique("sp"), "--image", boot_disk(), "--xml", hostile)
    assert "/etc/shadow" in refused, refused


SIGN_AS_ROOT = (
    "import sys\n"
    "from rbdvm.helpers.ceph.session import Session\n"
    "from rbdvm.helpers.ceph import trust, vmstore\n"
    "from rbdvm.helpers.core.settings import CephTarget\n"
    "vm = sys.argv[1]\n"
    "with Session(CephTarget()) as s:\n"
    "    md = vmstore.read_metadata(s, 'system_' + vm)\n"
    "    values = trust.signed_definition(s, vm, md['xml'], md.get('_base_xml'))\n"
    "    vmstore.set_metadata(s, 'system_' + vm, values)\n")


def read_otherwise(vm: str) -> dict:
    """Issue 29's five causes, one definition each that libvirt reads as touching the host
    (tests/unit/test_devpolicy_hostile.py shows libvirt's reading of each): (text to replace,
    its replacement, a host file QEMU would have created or read)."""
    pwned = f"/tmp/{vm}.pwned"
    return {
        "a comment splitting a path": (
            "</devices>", f"<rng model='virtio'><backend model='random'><!---->{pwned}.rng</backend></rng></devices>",
            None),
        "a relative path": (
            "<os>", f"<sysinfo type='fwcfg'><entry name='opt/rbdvm/x' file='{pwned[1:]}.fwcfg'/></sysinfo><os>",
            None),
        "an attribute of another namespace": (
            "</devices>", f"<serial xmlns:x='urn:x' x:type='file' type='pty'><source path='/dev/pts/../..{pwned}'/>"
                          "</serial></devices>", pwned),
        "a second <devices>": (
            "</devices>", f"</devices><devices><serial type='file'><source path='{pwned}.second'/></serial></devices>",
            f"{pwned}.second"),
        "a device with no rule (shared memory)": (
            "</devices>", f"<shmem name='{vm}pwned'><model type='ivshmem-plain'/><size unit='M'>1</size></shmem>"
                          "</devices>", f"/dev/shm/{vm}pwned"),
    }


@pytest.mark.side_by_side
def test_a_definition_libvirt_reads_otherwise_never_runs_even_signed_by_mistake(vm):
    """For each way libvirt can read a definition otherwise than a naive policy does: trust
    refuses to sign it (device policy), and when root signs it anyway (a script, a mistake),
    the agent's start refuses it by the device policy: no QEMU, no file on the host, no
    retry elsewhere; the signed clean definition validates again afterwards."""
    good = meta_get(vm, "xml")
    script = files_dir() / f"{vm}.sign.py"
    script.write_text(SIGN_AS_ROOT)
    for what, (old, new, made) in read_otherwise(vm).items():
        assert old in good, (what, old)
        meta_set(vm, "xml", good.replace(old, new, 1))
        refused = rbdvm_error(6, "trust", vm, "--yes")
        assert "device policy" in refused, (what, refused)
        ops.on(N1, PYTHON, str(script), vm)                    # signed by root, by mistake
        assert rbdvm_json("info", vm)["trust"] == "signed", what
        res = agent(N1, "start", vm=vm)
        assert res.returncode == 6, (what, res.returncode, res.stderr)
        reason = exit_reason(res)
        assert "device policy" in reason and f"VM {vm}" in reason, (what, reason)
        assert runs_nowhere(vm), what
        if made:
            assert not ops.on(N1, "test", "-e", made, check=False).returncode == 0, (what, made)
    meta_set(vm, "xml", good)
    ops.on(N1, PYTHON, str(script), vm)
    # the clean definition is one the agent may start again (booting it: the first test here)
    assert agent(N1, "validate-all", vm=vm).returncode == 0


@pytest.mark.side_by_side
def test_a_history_written_by_a_pool_key_holder_is_shown_as_data_within_its_bounds():
    """Issue 32: 20 MiB of junk and a forged record with terminal escapes appended to the
    event history with the nodes' client key (a namespace of its own, so no other test's
    history is buried): `rbdvm events` reads a bounded tail, shows the forgery escaped, counts
    what is not a record, and says older records were left unread."""
    import time

    from rbdvm.helpers.core import events

    ns = unique("hist")
    oid = f"rbdvm.events.{time.strftime('%Y%m%d', time.gmtime())}"
    junk, forged = files_dir() / f"{ns}.junk", files_dir() / f"{ns}.forged"
    junk.write_bytes((b"{" * 999 + b"\n") * (20 * 1024))
    forged.write_bytes(events.encode(events.Event(at=time.time(), kind="fence", node="node9",
                                                  vm="\x1b[2J\x1b[Hall is well", info={"target": "node1"})) + b"\n")
    rados = ["rados", "--id", L.CEPH_USER, "-p", L.POOL, "-N", ns]
    try:
        for f in (junk, forged):
            ops.on(N1, *rados, "append", oid, str(f))
        t0 = time.monotonic()
        shown = rbdvm("events", "--namespace", ns, "--since", "1h")
        assert time.monotonic() - t0 < 10
        assert "\x1b" not in shown.stdout and "\\x1b[2J\\x1b[Hall is well" in shown.stdout, shown.stdout
        assert "not rbdvm records: skipped" in shown.stdout and "left unread" in shown.stdout, shown.stdout
        read = rbdvm_json("events", "--namespace", ns, "--since", "1h")
        # the nodes' own events (default namespace) come with it: other tests' fences and lost
        # guest nodes of the last hour
        assert [e["node"] for e in read["events"] if e["node"] == "node9"] == ["node9"], read["events"]
        assert all(e["kind"] in events.NODE_KINDS for e in read["events"]), read["events"]
        assert read["cut"] and read["skipped"] > 0
    finally:
        ops.on(N1, *rados, "rm", oid, check=False)
        junk.unlink()
        forged.unlink()
