"""Runs on a lab node (venv python, client.rbdvm): times rbdvm's storage operations against
the bare RBD calls and qemu-img doing the same work, in the same process and run.
Prints one JSON document. Called by bench/storage.py."""

import json
import os
import statistics
import subprocess
import sys
import time

import rbd

from rbdvm.helpers.ceph import diskimage
from rbdvm.helpers.ceph.session import Session
from rbdvm.helpers.core.settings import ceph_target_from_env
from rbdvm.helpers.ops import cloning, creation, removal
from rbdvm.helpers.ops.env import Env

MiB, GiB = 1 << 20, 1 << 30
FILES = sys.argv[1]          # a directory shared with the host, for disk files
REPEAT = 5


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def used(io, image):
    total = [0]
    with rbd.Image(io, image, read_only=True) as img:
        img.diff_iterate(0, img.size(), None,
                         lambda o, n, e: total.__setitem__(0, total[0] + (n if e else 0)),
                         include_parent=False, whole_object=True)
    return total[0]


def write_data(image, nbytes):
    subprocess.run(["rbd", "--id", "rbdvm", "bench", "--io-type", "write", "--io-size", "4M",
                    "--io-threads", "4", "--io-total", str(nbytes), "--io-pattern", "seq", f"rbd/{image}"],
                   check=True, capture_output=True)


def base_xml():
    path = os.path.join(FILES, "bench.base.xml")
    with open(path, "w") as f:
        f.write("<domain type='qemu'><name>x</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices/></domain>")
    return open(path).read()


def make_vm(env, name, nbytes, size=2 * GiB + 64 * MiB):
    raw = os.path.join(FILES, "bench-empty.raw")
    with open(raw, "wb") as f:
        f.truncate(size)
    creation.create(env, name, raw, base_xml())
    write_data(f"system_{name}", nbytes)


def bare_cow(io, src, n):
    snap, child = f"bare{n}", f"bare{n}child"
    with rbd.Image(io, src) as img:
        img.create_snap(snap)
        img.protect_snap(snap)
    rbd.RBD().clone(io, src, snap, io, child)
    return snap, child


def undo_bare(io, src, snap, child):
    rbd.RBD().remove(io, child)
    with rbd.Image(io, src) as img:
        img.unprotect_snap(snap)
        img.remove_snap(snap)


def clone_bench(env):
    io = env.session.ioctx
    out = {"cow": {}, "bare": {}}
    for written in (256 * MiB, 1 * GiB, 2 * GiB):
        src = f"benchsrc{written // MiB}"
        make_vm(env, src, written)
        cow, bare = [], []
        for i in range(REPEAT):   # interleaved: both see the same cluster state
            bare_t = time.perf_counter()
            snap, child = bare_cow(io, f"system_{src}", i)
            bare.append(time.perf_counter() - bare_t)
            undo_bare(io, f"system_{src}", snap, child)
            dst = f"benchcow{i}"
            cow.append(timed(lambda src=src, dst=dst: cloning.clone(env, src, dst)))
            removal.remove(env, dst)
        out["cow"][written // MiB] = statistics.median(cow)
        out["bare"][written // MiB] = statistics.median(bare)
        if written == 1 * GiB:
            full = timed(lambda src=src: cloning.clone(env, src, "benchfull", full=True))
            out["full_1g"] = full
            out["full_1g_used"] = used(io, "system_benchfull")
            removal.remove(env, "benchfull")
            with rbd.Image(io, f"system_{src}", read_only=True) as img:
                deep = timed(lambda: img.deep_copy(io, "benchdeep"))
            out["deep_copy_1g"] = deep
            rbd.RBD().remove(io, "benchdeep")
        removal.remove(env, src)
    return out


def import_bench(env):
    path = os.path.join(FILES, "bench-import.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, "1G"], check=True)
    # ~256 MiB of data in 64 extents of 4 MiB spread over the disk
    cmds = []
    for i in range(64):
        cmds += ["-c", f"write -P {(i % 250) + 1} {i * 16 * MiB} {4 * MiB}"]
    subprocess.run(["qemu-io", "-f", "qcow2", *cmds, path], check=True, capture_output=True)
    data = 64 * 4 * MiB
    io = env.session.ioctx
    disk = diskimage.inspect(path)
    ours, step, theirs = [], [], []
    for _ in range(3):   # interleaved
        ours.append(timed(lambda: creation.create(env, "benchimp", path, base_xml())))
        stored_ours = used(io, "system_benchimp")
        removal.remove(env, "benchimp")
        rbd.RBD().create(io, "benchstep", GiB)
        step.append(timed(lambda: diskimage.import_into(disk, env.session.target, "benchstep")))
        rbd.RBD().remove(io, "benchstep")
        rbd.RBD().create(io, "benchqimg", GiB)
        opts = "driver=rbd,pool=rbd,image=benchqimg,user=rbdvm,conf=/etc/ceph/ceph.conf"
        t0 = time.perf_counter()
        subprocess.run(["qemu-img", "convert", "-n", "-W", "-f", "qcow2", path,
                        "--target-image-opts", opts], check=True)
        theirs.append(time.perf_counter() - t0)
        stored_theirs = used(io, "benchqimg")
        rbd.RBD().remove(io, "benchqimg")
    os.unlink(path)
    return {"data_bytes": data, "rbdvm_create": statistics.median(ours),
            "rbdvm_import_step": statistics.median(step),
            "qemu_img_convert_W": statistics.median(theirs),
            "stored_rbdvm": stored_ours, "stored_qemu_img": stored_theirs}


def main():
    with Session(ceph_target_from_env()) as s:
        env = Env(session=s)
        # warm-up: the first large write after the lab starts pays memory first-touch
        make_vm(env, "benchwarm", 512 * MiB)
        removal.remove(env, "benchwarm")
        result = {"clone": clone_bench(env), "import": import_bench(env)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
