"""Pure logic: the hand-assembled boot sector and the test guest's domain XML (no lab)."""

import pytest
from lxml import etree

from labkit import guest
from labkit import layout as L

pytestmark = pytest.mark.unit


def test_boot_sector_is_a_valid_mbr_with_both_messages():
    bs = guest.boot_sector()
    assert len(bs) == 512 and bs[510:] == b"\x55\xaa"
    assert bs[guest.CODE_SIZE:].startswith(b"READY\r\n\0POWEROFF\r\n\0")


def test_boot_sector_message_addresses_point_at_the_messages():
    bs = guest.boot_sector()
    # `mov si, imm16` (0xbe) loads each message address
    addrs = [int.from_bytes(bs[i + 1:i + 3], "little") for i in range(guest.CODE_SIZE) if bs[i] == 0xBE]
    assert [bs[a - guest.ORG:].split(b"\0")[0] for a in addrs] == [b"READY\r\n", b"POWEROFF\r\n"]


def test_boot_sector_bytes_are_the_ones_proven_on_qemu():
    # the exact image whose READY / POWEROFF behaviour was measured (lab notes, acpiguest)
    proven = bytes.fromhex(
        "fa31c08ed88ed0bc007cbe537ce8370066b8400b0080baf80c66efbafc0c66ed83e0c089c38d5702"
        "b80001effbf489daeda9000174f7be5b7ce80b008d5704b80020effaf4ebfcbaf803ac84c07403ee"
        "ebf8c352454144590d0a00504f5745524f46460d0a00")
    assert guest.boot_sector() == proven.ljust(510, b"\0") + b"\x55\xaa"


def test_disk_image_starts_with_the_boot_sector():
    img = guest.disk_image(4096)
    assert len(img) == 4096 and img[:512] == guest.boot_sector() and img[512:] == bytes(3584)


def test_domain_xml_boots_from_rbd_as_rbdvm():
    dom = etree.fromstring(guest.domain_xml("g1", "0b0a7c1e-2d3f-4a5b-8c6d-7e8f90a1b2c3", "img1", "/x/g1.serial"))
    assert dom.get("type") == "qemu"
    assert dom.findtext("uuid") == "0b0a7c1e-2d3f-4a5b-8c6d-7e8f90a1b2c3"
    disk = dom.find("devices/disk")
    assert disk.find("source").get("name") == f"{L.POOL}/img1"
    assert [h.get("name") for h in disk.iterfind("source/host")] == [L.IP[m] for m in L.MONS]
    assert disk.find("auth").get("username") == L.CEPH_USER
    assert disk.find("auth/secret").get("usage") == f"client.{L.CEPH_USER}"
    assert dom.find("devices/serial/source").get("path") == "/x/g1.serial"
    assert dom.find("features/acpi") is not None
