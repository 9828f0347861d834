"""The rules behind "a Ceph key is not root" (docs/security.md), pure: the signature scheme
(core/signing.py), where the secret comes from and when it is refused (core/secret.py), and
the device policy (core/devpolicy.py). The lab proves them against real attacks
(tests/system/test_trust.py); these check each decision fast."""

import os

import pytest
from lxml import etree

from labkit import guest
from rbdvm.helpers.core import devpolicy, domainxml, secret, signing
from rbdvm.helpers.core.errors import ClusterUnavailable, UsageError

pytestmark = [pytest.mark.unit, pytest.mark.requires("/usr/share/libvirt/schemas/domain.rng")]

B = signing.Binding(fsid="f1", pool="rbd", namespace="", vm="vm1")


def key(secret_bytes=b"k" * 64):
    return signing.SigningKey(secret_bytes, "test")


# ------------------------------------------------------------------ signatures
def test_a_signature_verifies_only_for_its_content_binding_and_key():
    data = signing.definition_data("<domain/>", "<domain/>")
    sig = signing.sign(key(), signing.DEFINITION, B, data)
    assert signing.verdict(key(), signing.DEFINITION, B, data, sig) == (signing.SIGNED, key().key_id)
    for other in (B.__class__("f2", "rbd", "", "vm1"), B.__class__("f1", "other", "", "vm1"),
                  B.__class__("f1", "rbd", "ns", "vm1"), B.__class__("f1", "rbd", "", "vm2")):
        assert signing.verdict(key(), signing.DEFINITION, other, data, sig)[0] == signing.TAMPERED, other
    changed = signing.definition_data("<domain><x/></domain>", "<domain/>")
    assert signing.verdict(key(), signing.DEFINITION, B, changed, sig)[0] == signing.TAMPERED
    # a definition's signature is not a settings signature
    assert signing.verdict(key(), signing.SETTINGS, B, data, sig)[0] == signing.TAMPERED
    state, key_id = signing.verdict(key(b"z" * 64), signing.DEFINITION, B, data, sig)
    assert state == signing.OTHER_KEY and key_id == key().key_id
    assert signing.verdict(key(), signing.DEFINITION, B, data, None)[0] == signing.UNSIGNED
    assert signing.verdict(key(), signing.DEFINITION, B, data, "")[0] == signing.UNSIGNED
    for garbage in ("x", "a:b:c", sig + ":more", 42):
        assert signing.verdict(key(), signing.DEFINITION, B, data, garbage)[0] == signing.TAMPERED


def test_removing_a_signed_setting_breaks_the_signature():
    keys = ("_priority", "_pinned_host")
    md = {"_priority": "5", "_pinned_host": "node1", "owner": "alice"}
    sig = signing.sign(key(), signing.SETTINGS, B, signing.settings_data(md, keys))
    assert signing.verdict(key(), signing.SETTINGS, B, signing.settings_data(md, keys), sig)[0] == signing.SIGNED
    del md["_pinned_host"]
    assert signing.verdict(key(), signing.SETTINGS, B, signing.settings_data(md, keys), sig)[0] == signing.TAMPERED
    md["_pinned_host"], md["owner"] = "node1", "mallory"     # user metadata is data, not signed
    assert signing.verdict(key(), signing.SETTINGS, B, signing.settings_data(md, keys), sig)[0] == signing.SIGNED


def test_the_key_is_derived_never_the_secret_itself():
    k = key(b"s" * 64)
    assert k.mac(b"m") != signing.SigningKey(b"t" * 64, "x").mac(b"m")
    assert b"s" * 32 not in bytes.fromhex(k.mac(b"m"))


# ------------------------------------------------------------------ the secret
def _file(tmp_path, data=None, mode=0o600):
    path = tmp_path / "authkey"
    path.write_bytes(os.urandom(64) if data is None else data)
    path.chmod(mode)
    return str(path)


@pytest.fixture(autouse=True)
def _fresh_cache():
    secret.forget()
    yield
    secret.forget()


ME = os.geteuid()    # the owner the files below must have (root on a node)


def test_a_private_secret_is_used_and_one_others_can_read_is_refused(tmp_path):
    path = _file(tmp_path)
    assert secret.load({secret.ENV: path}, owner=ME).source == path
    secret.forget()
    with pytest.raises(ClusterUnavailable, match="not private to root"):
        secret.load({secret.ENV: path}, owner=ME + 1)     # someone else's file
    os.chmod(path, 0o640)
    with pytest.raises(ClusterUnavailable, match="not private to root"):
        secret.load({secret.ENV: path}, owner=ME)
    short = _file(tmp_path, b"x" * 8)
    with pytest.raises(ClusterUnavailable, match="too short"):
        secret.load({secret.ENV: short}, owner=ME)


def test_no_secret_says_where_it_looked(tmp_path):
    with pytest.raises(ClusterUnavailable, match="no signing secret") as exc:
        secret.load({secret.ENV: str(tmp_path / "missing")})
    assert str(tmp_path / "missing") in exc.value.message


def test_without_the_override_the_dedicated_key_comes_before_corosyncs():
    assert secret.candidates({}) == [secret.KEY_FILE, secret.COROSYNC_AUTHKEY]


# ------------------------------------------------------------------ the device policy
DEFAULT = devpolicy.Policy()


def problems(xml: str, policy=DEFAULT, vm="vm1") -> list:
    return devpolicy.problems(domainxml.parse(xml), vm=vm, pool="rbd", namespace="", policy=policy)


def domain(devices: str = "", os_: str = "<type>hvm</type>", extra: str = "") -> str:
    return f"<domain type='kvm'><name>vm1</name><os>{os_}</os>{extra}<devices>{devices}</devices></domain>"


OWN_DISK = ("<disk type='network' device='disk'><source protocol='rbd' name='rbd/system_vm1'>"
            "<host name='10.0.0.1' port='6789'/></source><target dev='vda' bus='virtio'/></disk>")


def test_seapaths_standard_guest_with_its_rbd_disks_passes_the_default_policy():
    root = etree.fromstring(guest.seapath_like_base_xml("vm1").encode())
    root.find("devices").append(etree.fromstring(OWN_DISK))
    assert devpolicy.problems(root, vm="vm1", pool="rbd", namespace="", policy=devpolicy.Policy()) == []


@pytest.mark.parametrize("devices, words", [
    ("<disk type='file'><source file='/etc/ceph/ceph.client.rbdvm.keyring'/><target dev='vdb'/></disk>",
     "host's file /etc/ceph"),
    ("<disk type='block'><source dev='/dev/sda'/><target dev='vdb'/></disk>", "host's block /dev/sda"),
    ("<disk type='network'><source protocol='rbd' name='rbd/system_other'/><target dev='vdb'/></disk>",
     "not one of VM vm1's own"),
    ("<disk type='network'><source protocol='rbd' name='other/system_vm1'/><target dev='vdb'/></disk>",
     "not one of VM vm1's own"),
    ("<disk type='network'><source protocol='nbd' name='x'/><target dev='vdb'/></disk>", "host's network"),
    ("<filesystem type='mount'><source dir='/'/><target dir='root'/></filesystem>", "filesystem /"),
    ("<serial type='file'><source path='/etc/shadow'/></serial>", "/etc/shadow"),
    ("<serial type='dev'><source path='/dev/ttyS0'/></serial>", "type='dev'"),
    ("<serial type='pty'><log file='/root/x'/></serial>", "log file /root/x"),
    ("<channel type='unix'><source mode='bind' path='/root/sock'/></channel>", "socket /root/sock"),
    ("<channel type='unix'><source mode='bind' path='/var/lib/libvirt/qemu/channel/../../../x'/></channel>",
     "socket"),
    ("<interface type='ethernet'><script path='/tmp/x.sh'/></interface>", "host script /tmp/x.sh"),
    ("<interface type='vhostuser'><source type='unix' path='/run/ovs/s' mode='server'/></interface>",
     "vhost-user"),
    ("<interface type='udp'/>", "interface_types"),
    ("<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='3' slot='0' function='0'/>"
     "</source></hostdev>", "0000:03:00.0"),
    ("<hostdev mode='subsystem' type='usb'/>", "only PCI"),
    ("<emulator>/tmp/evil</emulator>", "<emulator> /tmp/evil"),
    ("<tpm><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>", "emulated TPM"),
    ("<input type='evdev'><source dev='/dev/input/event0'/></input>", "input device"),
    ("<graphics type='vnc' socket='/root/vnc'/>", "socket='/root/vnc'"),
    ("<shmem name='x'><server path='/tmp/shm'/></shmem>", "<shmem name='x'>"),
])
def test_devices_backed_by_the_host_are_refused(devices, words):
    found = problems(domain(OWN_DISK + devices))
    assert any(words in p for p in found), found


@pytest.mark.parametrize("os_, words", [
    ("<type>hvm</type><kernel>/root/vmlinuz</kernel>", "<os><kernel> /root/vmlinuz"),
    ("<type>hvm</type><loader>/tmp/OVMF.fd</loader>", "<os><loader>"),
    ("<type>hvm</type><nvram template='/etc/shadow'>/var/lib/libvirt/qemu/nvram/x.fd</nvram>", "template"),
    ("<type>hvm</type><acpi><table type='slic'>/etc/shadow</table></acpi>", "acpi"),
])
def test_boot_files_outside_the_firmware_directories_are_refused(os_, words):
    found = problems(domain(OWN_DISK, os_))
    assert any(words in p for p in found), found


def test_any_namespaced_element_outside_metadata_is_refused_and_metadata_is_not():
    qemu = ("<qemu:commandline xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
            "<qemu:arg value='-D'/><qemu:arg value='/root/x'/></qemu:commandline>")
    assert any("passthrough" in p for p in problems(domain(OWN_DISK, extra=qemu)))
    meta = "<metadata><app:x xmlns:app='urn:x' path='/any/thing'>/etc/shadow</app:x></metadata>"
    assert problems(domain(OWN_DISK, extra=meta)) == []


def test_sysinfo_reading_a_host_file_is_caught_by_the_catch_all():
    sysinfo = "<sysinfo type='fwcfg'><entry name='opt/x' file='/etc/shadow'/></sysinfo>"
    assert any("file='/etc/shadow'" in p for p in problems(domain(OWN_DISK, extra=sysinfo)))


def test_firmware_and_libvirts_own_paths_pass():
    os_ = ("<type machine='q35'>hvm</type><loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd"
           "</loader><nvram template='/usr/share/OVMF/OVMF_VARS.fd'>/var/lib/libvirt/qemu/nvram/vm1_VARS.fd</nvram>")
    devices = (OWN_DISK + "<emulator>/usr/bin/qemu-system-x86_64</emulator>"
               "<serial type='pty'><source path='/dev/pts/3'/></serial>"
               "<channel type='unix'><source mode='bind' path='/var/lib/libvirt/qemu/channel/target/x/org.qemu."
               "guest_agent.0'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
               "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
               "<interface type='bridge'><source bridge='br0'/><backend tap='/dev/net/tun'/></interface>")
    assert problems(domain(devices, os_)) == []


def test_a_policy_file_widens_exactly_what_it_names():
    policy = devpolicy.parse(b'file_dirs = ["/var/log/libvirt/qemu"]\n'
                             b'vhostuser_dirs = ["/var/run/openvswitch/vm-sockets"]\n'
                             b'pci_devices = ["0000:03:00.0"]\n', "test policy")
    devices = (OWN_DISK + "<serial type='file'><source path='/var/log/libvirt/qemu/vm1.log'/></serial>"
               "<interface type='vhostuser'><source type='unix' path='/var/run/openvswitch/vm-sockets/p1' "
               "mode='server'/></interface><hostdev mode='subsystem' type='pci'><source><address domain='0x0000' "
               "bus='0x03' slot='0x00' function='0x0'/></source></hostdev>")
    assert problems(domain(devices), policy) == []
    other_pci = devices.replace("bus='0x03'", "bus='0x04'")
    assert any("0000:04:00.0" in p for p in problems(domain(other_pci), policy))
    escape = devices.replace("/var/log/libvirt/qemu/vm1.log", "/var/log/libvirt/qemu/../../../etc/shadow")
    assert any("shadow" in p for p in problems(domain(escape), policy))


@pytest.mark.parametrize("text, words", [
    (b"file_dir = ['/x']", "unknown key"),
    (b"file_dirs = '/x'", "not a list"),
    (b"file_dirs = ['relative']", "not absolute"),
    (b"file_dirs = ['/a/../b']", "not absolute"),
    (b"file_dirs = [", "not valid TOML"),
])
def test_a_policy_file_with_a_mistake_is_refused_not_half_read(text, words):
    with pytest.raises(UsageError, match=words):
        devpolicy.parse(text, "p")


def test_a_policy_file_others_may_write_is_refused(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text("file_dirs = ['/var/log/libvirt/qemu']\n")
    path.chmod(0o644)
    assert devpolicy.load(str(path), owner=ME).file_dirs == ("/var/log/libvirt/qemu",)
    with pytest.raises(UsageError, match="not root's alone"):
        devpolicy.load(str(path), owner=ME + 1)           # someone else's file
    path.chmod(0o666)
    with pytest.raises(UsageError, match="not root's alone"):
        devpolicy.load(str(path), owner=ME)
    assert devpolicy.load(str(tmp_path / "none.toml"), owner=ME) == devpolicy.Policy()


@pytest.mark.parametrize("signature", [
    f"{signing.SCHEME}:{key().key_id}:" + "é" * 64,                      # compare_digest raised TypeError
    f"{signing.SCHEME}:{key().key_id}:" + "0" * 63 + "\u00e9",
    f"{signing.SCHEME}:\x1b[2J{'0' * 12}:" + "0" * 64,                   # a key id that is not one
    f"{signing.SCHEME}:{key().key_id}:" + "0" * 65,
    f"{signing.SCHEME}:{key().key_id}",
])
def test_a_malformed_signature_is_refused_never_a_crash(signature):
    assert signing.verdict(key(), signing.DEFINITION, B, {"xml": "x"}, signature) == (signing.TAMPERED, "")


def test_data_that_cannot_be_encoded_is_refused_never_a_crash():
    good = signing.sign(key(), signing.DEFINITION, B, {"xml": "x"})
    assert signing.verdict(key(), signing.DEFINITION, B, {"xml": "\ud800"}, good)[0] == signing.TAMPERED
