"""The device policy against definitions made to be read one way by it and another by libvirt
(issue 29's five causes), each checked against libvirt's own parser: libvirt's test driver
(test:///default, in-process, the same domain parser and formatter as the QEMU driver) defines
the definition and formats what it understood. Each case shows that libvirt reads the
dangerous value, and that the policy refuses the definition. Unit: no lab, no daemon."""

import pytest

from rbdvm.helpers.core import devpolicy, domainxml

pytestmark = [pytest.mark.unit, pytest.mark.requires("python:libvirt", "/usr/share/libvirt/schemas/domain.rng")]

POLICY = devpolicy.Policy(file_dirs=("/var/log/rbdvm",))
NS = "xmlns:x='urn:x'"


def dom(inside: str, os_: str = "", devices: str = "", attrs: str = "") -> str:
    return (f"<domain type='kvm' {attrs}><name>vm1</name><memory>65536</memory>"
            f"<os><type>hvm</type>{os_}</os>{inside}<devices>{devices}</devices></domain>")


OWN = "<disk type='network' device='disk'><source protocol='rbd' name='rbd/system_vm1'/><target dev='vda'/></disk>"

# (case, definition, what libvirt reads: (XPath on libvirt's formatted reading, the value), words refused with)
CASES = [
    ("comment in a boot path",
     dom("", "<kernel>/usr/share/OVMF/k</kernel><initrd><!---->/etc/corosync/authkey</initrd>"),
     ("string(/domain/os/initrd)", "/etc/corosync/authkey"), "comment inside its text"),
    ("comment continuing a firmware path",
     dom("", "<loader>/usr/share/OVMF/<!---->../../../etc/corosync/authkey</loader>"),
     ("string(/domain/os/loader)", "/usr/share/OVMF/../../../etc/corosync/authkey"), "comment inside its text"),
    ("comment in an rng backend",
     dom("", devices=OWN + "<rng model='virtio'><backend model='random'><!---->/etc/shadow</backend></rng>"),
     ("string(/domain/devices/rng/backend)", "/etc/shadow"), "comment inside its text"),
    ("processing instruction in a path",
     dom("", "<initrd><?x y?>/etc/corosync/authkey</initrd>"),
     ("string(/domain/os/initrd)", "/etc/corosync/authkey"), "processing instruction"),
    ("relative sysinfo file",
     dom("<sysinfo type='fwcfg'><entry name='opt/x' file='etc/corosync/authkey'/></sysinfo>", devices=OWN),
     ("string(/domain/sysinfo/entry/@file)", "etc/corosync/authkey"), "file='etc/corosync/authkey'"),
    ("relative serial file",
     dom("", devices=OWN + "<serial type='file'><source path='etc/shadow'/></serial>"),
     ("string(/domain/devices/serial/source/@path)", "etc/shadow"), "relative path"),
    ("relative kernel",
     dom("", "<kernel>etc/corosync/authkey</kernel>"),
     ("string(/domain/os/kernel)", "etc/corosync/authkey"), "relative path"),
    ("namespaced attribute on a serial",
     dom("", devices=OWN + "<serial x:type='file' type='pty'><source path='/dev/pts/../../tmp/x'/></serial>",
         attrs=NS),
     ("string(/domain/devices/serial/@type)", "file"), "another namespace"),
    ("namespaced attribute naming another VM's disk",
     dom("", devices="<disk type='network' device='disk'><source protocol='rbd' x:name='rbd/system_vm2' "
                     "name='rbd/system_vm1'/><target dev='vda'/></disk>", attrs=NS),
     ("string(/domain/devices/disk/source/@name)", "rbd/system_vm2"), "another namespace"),
    ("a second <os> with a host file as variable store",
     "<domain type='kvm'><name>vm1</name><memory>65536</memory><os><type>hvm</type></os><os><type>hvm</type>"
     "<loader>/usr/share/OVMF/OVMF_CODE.fd</loader><nvram>/etc/corosync/authkey</nvram></os>"
     f"<devices>{OWN}</devices></domain>",
     ("string(/domain/os/nvram)", "/etc/corosync/authkey"), "more than one <os>"),
    ("a second <devices> with a host file as disk",
     f"<domain type='kvm'><name>vm1</name><memory>65536</memory><os><type>hvm</type></os><devices>{OWN}"
     "</devices><devices><disk type='file'><source file='/etc/shadow'/><target dev='vdb'/></disk></devices></domain>",
     ("string(/domain/devices/disk[2]/source/@file)", "/etc/shadow"), "more than one <devices>"),
    ("a backing store in another VM's image",
     dom("", devices="<disk type='network' device='disk'><source protocol='rbd' name='rbd/system_vm1'/>"
                     "<backingStore type='network'><format type='raw'/><source protocol='rbd' name='rbd/system_vm2'/>"
                     "</backingStore><target dev='vda'/></disk>"),
     None, "backing store"),
    ("an NVMe disk",
     dom("", devices=OWN + "<disk type='nvme' device='disk'><source type='pci' managed='yes' namespace='1'>"
                           "<address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source>"
                           "<target dev='vdb'/></disk>"),
     ("string(/domain/devices/disk[2]/@type)", "nvme"), "host's nvme"),
    ("shared memory with the host",
     dom("", devices=OWN + "<shmem name='corosync'><model type='ivshmem-plain'/><size unit='M'>4</size></shmem>"),
     ("string(/domain/devices/shmem/@name)", "corosync"), "shmem"),
    ("host-side address and route",
     dom("", devices=OWN + "<interface type='ethernet'><ip address='192.0.2.1' family='ipv4' prefix='24'/>"
                           "<route family='ipv4' address='0.0.0.0' prefix='0' gateway='192.0.2.254'/></interface>"),
     ("string(/domain/devices/interface/ip/@address)", "192.0.2.1"), "host's side"),
    ("confinement turned off",
     dom("<seclabel type='none'/>", devices=OWN),
     ("string(/domain/seclabel/@type)", "none"), "<domain/seclabel>"),
    ("a display on the host's GPU render node",
     dom("", devices=OWN + "<graphics type='egl-headless'/>"),
     ("string(/domain/devices/graphics/@type)", "egl-headless"), "render node"),
    ("cgroup partition escaping",
     dom("<resource><partition>/machine/../..</partition></resource>", devices=OWN),
     None, "partition"),
    ("an element libvirt's schema does not know",
     dom("<devices2/>", devices=OWN), None, "schema"),
]


@pytest.fixture(scope="module")
def libvirt_reading():
    import libvirt

    libvirt.registerErrorHandler(lambda *_: None, None)
    conn = libvirt.open("test:///default")
    yield conn
    conn.close()


def _libvirt_reads(conn, xml: str):
    from lxml import etree

    dom_ = conn.defineXML(xml.replace("<name>vm1</name>", "<name>hostile</name>"))
    try:
        return etree.fromstring(dom_.XMLDesc(0).encode())
    finally:
        dom_.undefine()


@pytest.mark.parametrize("case, xml, reads, words", CASES, ids=[c[0] for c in CASES])
def test_a_definition_libvirt_reads_otherwise_is_refused(libvirt_reading, case, xml, reads, words):
    if reads is not None:
        path, value = reads
        assert _libvirt_reads(libvirt_reading, xml).xpath(path) == value, "libvirt reads it otherwise"
    found = devpolicy.problems(domainxml.parse(xml), vm="vm1", pool="rbd", namespace="", policy=POLICY)
    assert any(words in p for p in found), found


def test_the_same_definitions_without_the_trick_pass(libvirt_reading):
    clean = dom("<resource><partition>/machine/rt</partition></resource>",
                "<kernel>/usr/share/OVMF/k</kernel><initrd>/usr/share/OVMF/i</initrd>",
                OWN + "<serial type='file'><source path='/var/log/rbdvm/vm1.log'/></serial>"
                "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
                "<hostdev mode='subsystem' type='pci'><source><!-- a comment between elements is read the same -->"
                "<address domain='0' bus='3' slot='0' function='0'/></source></hostdev>")
    found = devpolicy.problems(domainxml.parse(clean), vm="vm1", pool="rbd", namespace="",
                               policy=devpolicy.Policy(file_dirs=("/var/log/rbdvm",), pci_devices=("*",)))
    assert found == []
    _libvirt_reads(libvirt_reading, clean)       # and libvirt takes it


def test_every_element_of_the_vocabulary_is_one_libvirts_schema_knows():
    """The allow-list names no element libvirt's schema lacks (a typo would admit nothing and
    mislead a reader)."""
    import re

    from rbdvm.helpers.core import domainvocab, libvirtschema

    schemas = "".join(open(p).read() for p in __import__("glob").glob(
        libvirtschema.SCHEMA.rsplit("/", 1)[0] + "/*.rng"))
    known = set(re.findall(r'<element name="([^"]+)"', schemas))
    assert {tag for _, tag in domainvocab.ADMITTED} - known == set()
