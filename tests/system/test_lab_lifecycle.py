"""The lab's own life cycle: idempotent up, status, clean down, recovery from stale state.

Runs last (marker lab_lifecycle): it takes the lab down and brings it up again.
"""

import subprocess

import pytest

from labkit import layout as L
from labkit import lifecycle, net
from labkit.procs import kill_pids, pids_in_netns, reap_children, run, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.lab_lifecycle]
LAB = str(L.LAB_SRC / "lab")
DAEMONS = ("ceph-mon", "ceph-mgr", "ceph-osd", "corosync", "pacemakerd", "libvirtd", "qemu-system-x86")


def _lab(*args):
    return subprocess.run([LAB, *args], capture_output=True, text=True, timeout=300)


def _nothing_left(registered_pids):
    """What the lab leaves behind: should be nothing."""
    # daemons a test restarted (libvirtd under its reaper) are this process's children: once
    # `lab down` killed them they are zombies only this process can reap
    reap_children()
    left = []
    for pid in registered_pids:
        try:
            stat = open(f"/proc/{pid}/stat").read()
            left.append(f"pid {pid}: {stat.split()[1]}")
        except OSError:
            pass
    left += [f"netns {ns}" for ns in net.existing()]
    left += [f"mount {line.split()[4]}" for line in open("/proc/self/mountinfo") if f"{L.LAB_DIR}/" in line]
    if L.STATE.exists():
        left.append(f"state dir {L.STATE}")
    if f"{L.NET}." in run(["ip", "-4", "addr"]).stdout:
        left.append("lab address in the root namespace")
    return left


def _registered():
    return [int(p.read_text().split()[0]) for p in L.PIDS.glob("*")]


def test_up_is_idempotent_and_status_healthy():
    res = _lab("up")
    assert res.returncode == 0 and "already up and healthy" in res.stdout
    res = _lab("status")
    assert res.returncode == 0, res.stdout
    assert [line.split()[:2] for line in res.stdout.splitlines()] == \
        [["switch", "healthy"], ["ceph", "healthy"]] + [[n, "healthy"] for n in L.NODES]
    assert f"mons in quorum {','.join(L.NODES)}" in res.stdout, "Ceph's health and the monitors' quorum"


def test_down_leaves_nothing_then_up_over_stale_state():
    registered = _registered()
    in_lab = pids_in_netns(L.ALL_NETNS)
    res = _lab("down")
    assert res.returncode == 0, res.stdout + res.stderr
    assert _nothing_left(registered + in_lab) == []
    assert _lab("status").returncode == 1

    assert _lab("up").returncode == 0
    # pull the plug on the whole lab: every process in its namespaces, no down
    victims = pids_in_netns(L.ALL_NETNS)
    kill_pids(victims)
    assert wait_for(10, lambda: not pids_in_netns(L.ALL_NETNS))
    assert L.STATE.exists() and net.existing(), "stale state is what this test is about"
    assert _lab("status").returncode == 1

    res = _lab("up")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "lab up in" in res.stdout
    assert [p for p in lifecycle.health() if not p[1]] == []
    assert not any(p in victims for p in pids_in_netns(L.ALL_NETNS))
