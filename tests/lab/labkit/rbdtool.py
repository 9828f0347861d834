"""Direct RBD I/O for tests, run on a node as client.rbdvm: python3 rbdtool.py CMD ...

  write NS IMAGE OFFSET BYTE LENGTH    fill LENGTH bytes at OFFSET with BYTE (0-255)
  read NS IMAGE OFFSET LENGTH          print the bytes as hex
  read-at NS IMAGE SNAP OFFSET LENGTH  the same, at snapshot SNAP
  digest NS IMAGE [SNAP]               SHA-256 of the whole image (at SNAP), and its size
  writer NS PROGRESS STOP IMAGE...     loop: write counter n (8 bytes) to offset 0 of each
                                       image in turn, then n to PROGRESS; until STOP exists
  hold-lease NS VM SECONDS READY       hold rbdvm's lease of VM (lock expiry SECONDS) forever,
                                       touching READY once held
  meta-many NS IMAGE COUNT             set COUNT metadata keys on IMAGE (another tool's)
  group-snap-incomplete NS GROUP SNAP  mark a group snapshot incomplete (a killed create)
  rm-header NS IMAGE                   delete an image's header object (a crashed remove)
NS is the RBD namespace ('-' for none). Uses /usr/bin/python3's rados/rbd bindings.
"""

import os
import struct
import sys
import time

import rados
import rbd


def ioctx(ns):
    cluster = rados.Rados(conffile="/etc/ceph/ceph.conf", rados_id="rbdvm")
    cluster.connect(timeout=10)
    io = cluster.open_ioctx("rbd")
    io.set_namespace("" if ns == "-" else ns)
    return io


def main(argv):
    cmd, ns, *args = argv
    if cmd == "write":
        image, offset, byte, length = args[0], int(args[1]), int(args[2]), int(args[3])
        with rbd.Image(ioctx(ns), image) as img:
            img.write(bytes([byte]) * length, offset)
    elif cmd == "read":
        image, offset, length = args[0], int(args[1]), int(args[2])
        with rbd.Image(ioctx(ns), image, read_only=True) as img:
            print(img.read(offset, length).hex())
    elif cmd == "read-at":
        image, snap, offset, length = args[0], args[1], int(args[2]), int(args[3])
        with rbd.Image(ioctx(ns), image, snapshot=snap, read_only=True) as img:
            print(img.read(offset, length).hex())
    elif cmd == "digest":
        import hashlib

        image, snap = args[0], (args[1] if len(args) > 1 else None)
        with rbd.Image(ioctx(ns), image, snapshot=snap, read_only=True) as img:
            h, size = hashlib.sha256(), img.size()
            for at in range(0, size, 4 << 20):
                h.update(img.read(at, min(4 << 20, size - at)))
            print(h.hexdigest(), size)
    elif cmd == "writer":
        progress, stop, images = args[0], args[1], args[2:]
        io = ioctx(ns)
        opened = [rbd.Image(io, i) for i in images]
        n = 0
        while not os.path.exists(stop):
            n += 1
            for img in opened:
                img.write(struct.pack(">Q", n), 0)
            with open(progress + ".tmp", "w") as f:
                f.write(str(n))
            os.replace(progress + ".tmp", progress)
        for img in opened:
            img.close()
    elif cmd == "meta-many":
        # as another tool would: many metadata keys straight on an image
        image, count = args[0], int(args[1])
        with rbd.Image(ioctx(ns), image) as img:
            for i in range(count):
                img.metadata_set(f"k{i:05d}", "v")
    elif cmd == "hold-lease":
        from rbdvm.helpers.ceph.lease import Lease
        from rbdvm.helpers.ceph.session import Session
        from rbdvm.helpers.core.settings import ceph_target_from_env

        vm, seconds, ready = args[0], int(args[1]), args[2]
        with Session(ceph_target_from_env(namespace="" if ns == "-" else ns)) as s:
            with Lease(s, vm, "test hold", seconds=seconds):
                open(ready, "w").close()
                while True:
                    time.sleep(1)
    elif cmd == "group-snap-incomplete":
        # what librbd leaves when killed inside `group snap create`: the group's record of the
        # snapshot says incomplete (cls::rbd::GroupSnapshot: encoding header of 6 bytes, id,
        # name, then the state byte; 0 = incomplete)
        group, snap = args
        io = ioctx(ns)
        gid = None
        with rados.ReadOpCtx() as op:
            it, _ = io.get_omap_vals(op, "", "name_", 1000)
            io.operate_read_op(op, "rbd_group_directory")
            for k, v in it:
                if k == "name_" + group:
                    gid = v[4:4 + struct.unpack_from("<I", v)[0]].decode()
        oid = f"rbd_group_header.{gid}"
        with rados.ReadOpCtx() as op:
            it, _ = io.get_omap_vals(op, "", "snapshot_", 1000)
            io.operate_read_op(op, oid)
            snaps = dict(it)
        for key, raw in snaps.items():
            at = 6
            for _ in range(2):
                n = struct.unpack_from("<I", raw, at)[0]
                text, at = raw[at + 4:at + 4 + n], at + 4 + n
            if text.decode() == snap:
                patched = raw[:at] + b"\x00" + raw[at + 1:]
                with rados.WriteOpCtx() as op:
                    io.set_omap(op, (key,), (patched,))
                    io.operate_write_op(op, oid)
                return
        sys.exit(f"no group snapshot {snap}")
    elif cmd == "rm-header":
        # an image whose header object is gone (a crash inside librbd's remove)
        image = args[0]
        io = ioctx(ns)
        image_id = {i["name"]: i["id"] for i in rbd.RBD().list2(io)}[image]
        io.remove_object(f"rbd_header.{image_id}")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
