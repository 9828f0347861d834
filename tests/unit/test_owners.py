"""One owner for each mechanism (issue 20): each rule lives in one module, and a test fails
when another module starts doing it again (pure: the source is read, nothing runs)."""

import re
from pathlib import Path

import pytest

from rbdvm.helpers.core import names

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("helpers", "ocf", "cli", "ansible_collections")


def users(pattern: str) -> list:
    rx = re.compile(pattern)
    return sorted(str(p.relative_to(REPO)) for folder in PRODUCT for p in (REPO / folder).rglob("*.py")
                  if rx.search(p.read_text()))


@pytest.mark.parametrize("what,pattern,owner", [
    ("address -> name (bounded)", r"gethostbyaddr", ["helpers/core/hostnames.py"]),
    ("RADOS object locks", r"\.lock_exclusive\(|\.unlock\(", ["helpers/ceph/radoslock.py"]),
    ("a call given up on at a deadline", r"start_new_thread|threading\.Thread\(target=call",
     ["helpers/core/bounded.py"]),
    ("running Pacemaker's tools", r"subprocess\.run\(\[?\"?(crm_|cibadmin|stonith_admin)|subprocess\.run\(argv",
     ["helpers/pacemaker/runner.py"]),
    ("the peer libvirt URI", r"\+\{[\w.]*transport", ["helpers/core/peer.py"]),
    ("the disk name layout", r"\b(SYSTEM|DATA)_PREFIX\b", ["helpers/core/names.py"]),
    ("running monitor commands (bounded)", r"\.mon_command\(", ["helpers/ceph/session.py"]),
    ("a VM's stored states", r"[=!]= *\"(rolling-back|creating|removing|complete|foreign|broken|absent)\"",
     []),     # compared as vmschema.VmState members, never as text
])
def test_one_owner(what, pattern, owner):
    assert users(pattern) == owner, f"{what}: only {owner} may do it"


@pytest.mark.parametrize("image,parsed", [
    ("system_vm1", ("vm1", None)), ("data_vm1_0", ("vm1", 0)), ("data_vm1_12", ("vm1", 12)),
    ("system_", None), ("data_vm1", None), ("data_vm1_x", None), ("system_a-b", None), ("other", None),
    ("data_a_b_1", None), ("system_vm_1", None),
])
def test_disk_names_have_one_reading(image, parsed):
    assert names.parse_disk(image) == parsed
    if parsed:
        assert names.is_vm_disk(parsed[0], image) and names.vm_of_disk(image) == parsed[0]
        assert image == (names.system_disk(parsed[0]) if parsed[1] is None else names.data_disk(*parsed))
