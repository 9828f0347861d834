"""The agent's process-table fallback on real processes (no libvirt, no lab): stand-ins
named like QEMU, started with libvirt's `-name guest=NAME,...` argument."""

import os
import subprocess
import sys
import time

import pytest

from rbdvm.ocf import qemuproc

pytestmark = pytest.mark.unit

IGNORES_TERM = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
                "time.sleep(60)")
OBEYS_TERM = "import time; print('up', flush=True); time.sleep(60)"


def fake_qemu(tmp_path, name, code):
    exe = tmp_path / "qemu-system-x86_64"
    if not exe.exists():
        exe.symlink_to(sys.executable)
    proc = subprocess.Popen([str(exe), "-c", code, "-name", f"guest={name},debug-threads=on"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "up\n"
    return proc


def test_finds_only_the_named_guest(tmp_path):
    a = fake_qemu(tmp_path, "vm1", OBEYS_TERM)
    b = fake_qemu(tmp_path, "vm10", OBEYS_TERM)
    try:
        assert qemuproc.pids("vm1") == [a.pid]
        assert qemuproc.pids("vm10") == [b.pid]
        assert qemuproc.pids("vm") == []
    finally:
        a.kill(), b.kill(), a.wait(), b.wait()


def test_end_uses_sigterm_first_and_a_zombie_counts_as_gone(tmp_path):
    proc = fake_qemu(tmp_path, "vm2", OBEYS_TERM)
    t0 = time.monotonic()
    assert qemuproc.end("vm2", term_until=t0 + 5, until=t0 + 8) == []
    assert time.monotonic() - t0 < 2, "SIGTERM was enough"
    assert not qemuproc.running("vm2"), "a zombie (not reaped yet) holds nothing"
    assert proc.wait() == -15


def test_end_kills_what_ignores_sigterm_at_the_given_time(tmp_path):
    proc = fake_qemu(tmp_path, "vm3", IGNORES_TERM)
    t0 = time.monotonic()
    assert qemuproc.end("vm3", term_until=t0 + 1, until=t0 + 4) == []
    took = time.monotonic() - t0
    assert 0.9 < took < 3, took
    assert proc.wait() == -9


def test_nothing_to_end(tmp_path):
    assert qemuproc.end(f"none{os.getpid()}", time.monotonic(), time.monotonic() + 1) == []


def test_running_trusts_libvirts_pid_file_only_when_that_pid_is_the_guests_qemu(tmp_path, monkeypatch):
    monkeypatch.setattr(qemuproc, "PID_DIR", str(tmp_path))
    proc = fake_qemu(tmp_path, "vm4", OBEYS_TERM)
    other = subprocess.Popen([sys.executable, "-c", OBEYS_TERM], stdout=subprocess.PIPE, text=True)
    try:
        (tmp_path / "vm4.pid").write_text(f"{proc.pid}\n")
        assert qemuproc.running("vm4")
        (tmp_path / "vm5.pid").write_text(f"{other.pid}\n")     # a reused PID: not vm5's QEMU
        assert not qemuproc.running("vm5")
        (tmp_path / "vm4.pid").write_text("999999999\n")        # stale: the table still finds it
        assert qemuproc.running("vm4")
    finally:
        for p in (proc, other):
            p.kill(), p.wait()
    assert not qemuproc.running("vm4")


def test_rbd_guests_are_the_qemus_with_an_rbd_disk(tmp_path):
    exe = tmp_path / "qemu-system-x86_64"
    exe.symlink_to(sys.executable)
    rbd_disk = '{"driver":"rbd","pool":"rbd","image":"system_vm4","node-name":"libvirt-1-storage"}'
    procs = [subprocess.Popen([str(exe), "-c", OBEYS_TERM, "-name", f"guest={name},debug-threads=on",
                               "-blockdev", disk], stdout=subprocess.PIPE, text=True)
             for name, disk in (("vm4", rbd_disk), ("vm5", '{"driver":"file","filename":"/x.qcow2"}'))]
    try:
        for proc in procs:
            assert proc.stdout.readline() == "up\n"
        found = qemuproc.rbd_guests()
        assert "vm4" in found and "vm5" not in found, found
    finally:
        for proc in procs:
            proc.kill(), proc.wait()
