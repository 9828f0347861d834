"""Runs on a lab node (venv python, client.rbdvm): a VM's backup and restore against the bare
`rbd export` / `rbd import` of the same image in the same run, and an incremental backup's
size against the data written since the previous one. Prints one JSON document. Called by
bench/backup.py."""

import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from rbdvm.helpers.backupdir.store import Sink
from rbdvm.helpers.ceph import export
from rbdvm.helpers.ceph.session import Session
from rbdvm.helpers.core.settings import ceph_target_from_env
from rbdvm.helpers.ops import backup, creation, removal, restore
from rbdvm.helpers.ops.env import Env

MiB = 1 << 20
FILES = sys.argv[1]
DATA = int(sys.argv[2]) * MiB       # written to the VM's data disk before the full backup
CHANGED = int(sys.argv[3]) * MiB    # written (random 64 KiB blocks) before the incremental
RUNS = 5


def rbd(*args):
    subprocess.run(["rbd", "--id", "rbdvm", *args], check=True, capture_output=True)


def fsync(path):
    """What a backup does with each file it writes: to the disk before it counts."""
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bare_sequence(dump):
    """What a full backup of the VM does, typed with `rbd`: a snapshot of each disk, each
    exported and fsynced, the snapshots removed (a backup keeps its own until the next one,
    and removes the one before)."""
    disks = ("system_benchbk", "data_benchbk_0")
    for d in disks:
        rbd("snap", "create", f"rbd/{d}@benchseq")
    for d in disks:
        rbd("export", f"rbd/{d}@benchseq", f"{dump}.{d}")
        fsync(f"{dump}.{d}")
    for d in disks:
        rbd("snap", "rm", f"rbd/{d}@benchseq")
        os.unlink(f"{dump}.{d}")


def main():
    base = ("<domain type='qemu'><name>x</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices/></domain>")
    boot = os.path.join(FILES, "bench.boot.raw")
    with open(boot, "wb") as f:
        f.truncate(MiB)
    disk = os.path.join(FILES, "bench.data.raw")
    with open(disk, "wb") as f:
        f.truncate(2 * DATA)
    out = os.path.join(FILES, "bench-backups")
    dump = os.path.join(FILES, "bench.export")
    result = {"data_bytes": DATA, "changed_bytes": CHANGED}
    with Session(ceph_target_from_env()) as s:
        env = Env(session=s)
        creation.create(env, "benchbk", boot, base, data_images=[disk], force=True)
        rbd("bench", "--io-type", "write", "--io-size", "4M", "--io-threads", "4", "--io-total", str(DATA),
            "--io-pattern", "seq", "rbd/data_benchbk_0")
        bare, ours, steps, imports, restores, sequences = [], [], [], [], [], []
        for _ in range(RUNS):
            sequences.append(timed(lambda: bare_sequence(dump)))
            rbd("snap", "create", "rbd/data_benchbk_0@benchbare")
            for path in (dump, out):
                shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else (
                    os.path.exists(path) and os.unlink(path))
            bare.append(timed(lambda: (rbd("export", "rbd/data_benchbk_0@benchbare", dump), fsync(dump))))
            os.unlink(dump)

            def step():
                dir_fd = os.open(os.path.dirname(dump), os.O_RDONLY | os.O_DIRECTORY)
                try:
                    with Sink(os.path.basename(dump), dir_fd) as sink:
                        export.export(s, "data_benchbk_0", "benchbare", None, sink)
                finally:
                    os.close(dir_fd)
            steps.append(timed(step))
            os.unlink(dump)
            rbd("snap", "rm", "rbd/data_benchbk_0@benchbare")
            r = backup.backup(env, "benchbk", out, full=True)
            ours.append(r["seconds"])
            rbd("export", f"rbd/data_benchbk_0@{r['snapshot']}", dump)
            imports.append(timed(lambda: rbd("import", dump, "rbd/benchimport")))
            rbd("rm", "rbd/benchimport")
            restores.append(timed(lambda: restore.restore(env, out, "benchbk", as_name="benchrs")))
            removal.remove(env, "benchrs")
            os.unlink(dump)
        result.update(bare_export=statistics.median(bare), backup_full=statistics.median(ours),
                      bare_sequence=statistics.median(sequences),
                      export_step=statistics.median(steps),
                      bare_import=statistics.median(imports), restore=statistics.median(restores))
        rbd("bench", "--io-type", "write", "--io-size", "64K", "--io-threads", "1", "--io-total", str(CHANGED),
            "--io-pattern", "rand", "rbd/data_benchbk_0")
        inc = backup.backup(env, "benchbk", out)
        result.update(incremental_kind=inc["kind"], incremental_bytes=inc["bytes"],
                      incremental_seconds=inc["seconds"])
        removal.remove(env, "benchbk")
    shutil.rmtree(out, ignore_errors=True)
    for path in (boot, disk):
        os.unlink(path)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
