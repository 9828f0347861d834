"""A real guest on the lab: boots from RBD on node1, live-migrates to node2, powers off on ACPI."""

import pytest

from labkit import layout as L
from labkit import ops
from labkit.procs import wait_for

pytestmark = pytest.mark.lab

NAME = "labguest"


@pytest.fixture
def guest_image():
    ops.import_boot_disk(L.NODES[0], NAME)
    yield NAME
    for n in L.HYPERVISORS:
        if NAME in ops.running(n):
            ops.virsh(n, "destroy", NAME, check=False)
    ops.remove_image(L.NODES[0], NAME)


def test_guest_boots_from_rbd_migrates_live_and_shuts_down(guest_image):
    n1, n2 = L.HYPERVISORS
    ops.start_guest(n1, NAME, guest_image)
    ops.wait_serial(NAME, "READY")
    assert ops.running(n1) == [NAME]
    assert ops.watchers(n1, guest_image) == [L.IP[n1]], "QEMU on node1 holds the disk open"

    ops.migrate(n1, n2, NAME)
    assert ops.running(n2) == [NAME] and ops.running(n1) == []
    assert ops.virsh(n2, "domstate", NAME) == "running"
    assert ops.watchers(n2, guest_image) == [L.IP[n2]], "the disk's client moved with the guest"
    assert ops.serial_text(NAME).count("READY") == 1, "a live migration must not reboot the guest"

    # the guest still answers on node2: it handles the ACPI power button and powers off
    ops.shutdown(n2, NAME)
    assert "POWEROFF" in ops.serial_text(NAME)
    assert ops.running(n2) == [] and ops.virsh(n2, "list", "--all", "--name") == "", "transient: nothing left defined"
    assert wait_for(10, lambda: ops.watchers(n1, guest_image) == []), "no client left on the disk"
