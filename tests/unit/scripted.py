"""A scripted environment for the operations' unit tests (helpers/ops/env.Env), and only for
them: the lab tests run the real Ceph, Pacemaker and libvirt, and stay the proof.

- ScriptedCeph: a session whose `rbd` and `rados` are an in-memory model of the librbd and
  librados calls rbdvm's Ceph adapters make (images with metadata, snapshots, clones and
  watchers; groups and group snapshots; RADOS objects with xattrs and locks; the header and
  group-directory omaps rbdbulk reads). It raises librbd's and librados' own exception
  classes, so the adapters' error handling runs as it does on Ceph. It signs with a test key
  and applies the built-in device policy.
- ScriptedPacemaker: answers Pacemaker's tools from an in-memory CIB and resource status,
  records every call, and applies the CIB changes rbdvm makes (cibadmin --modify/--replace/
  --delete, crm_resource --meta/--move/--clear, crm_attribute).
- scripted_env(): an Env of both, a disk importer that records what it imported, a libvirt
  opener that fails (a test that needs one passes its own), and a fixed clock.
"""

import itertools
import json
import struct
from datetime import datetime, timezone

import rados
import rbd
from lxml import etree

from rbdvm.helpers.core import devpolicy, signing
from rbdvm.helpers.core.errors import ClusterUnavailable
from rbdvm.helpers.core.settings import CephTarget
from rbdvm.helpers.ops.env import Env
from rbdvm.helpers.pacemaker.cluster import Cluster

FSID = "00000000-0000-4000-8000-00000000f51d"
NOW = datetime(2026, 12, 4, 12, 0, 0, tzinfo=timezone.utc)


# ------------------------------------------------------------------ Ceph
class _Snap:
    def __init__(self, sid: int, name: str, image, namespace: int = rbd.RBD_SNAP_NAMESPACE_TYPE_USER,
                 group_snap: str | None = None):
        self.id, self.name, self.namespace, self.group_snap = sid, name, namespace, group_snap
        self.protected = False
        self.size, self.content = image.size, image.content
        self.timestamp = NOW.replace(tzinfo=None)


class _Image:
    def __init__(self, store, name: str, size: int):
        self.name, self.id, self.size = name, f"{next(store.ids):x}", size
        self.metadata: dict = {}
        self.snaps: list = []
        self.parent = None          # (image name, snapshot name) of a clone
        self.group = None
        self.watchers: list = []    # {"addr": "IP:PORT/NONCE"}
        self.content = None         # what was imported or written (a label)


class _Store:
    """One pool's namespace: images, groups and RADOS objects."""

    def __init__(self):
        self.images: dict = {}
        self.groups: dict = {}      # name -> {"id", "images": [names], "snaps": [{"name", "state"}]}
        self.objects: dict = {}     # name -> {"xattrs": {}, "locks": {lock name: cookie}}
        self.ids = itertools.count(0x1000)
        self.snap_ids = itertools.count(4)
        self.namespaces = {""}
        self.calls: list = []       # (what, name) of every change, for tests that check the order

    def image(self, name: str) -> _Image:
        if name not in self.images:
            raise rbd.ImageNotFound(f"image {name}", errno=2)
        return self.images[name]


class ImageHandle:
    """rbd.Image over the model (opened at head, or at `snapshot` read-only)."""

    def __init__(self, ioctx, name: str, snapshot: str | None = None, read_only: bool = False):
        self.store, self.read_only = ioctx.store, read_only or snapshot is not None
        self.state = self.store.image(name)
        self.at = None
        if snapshot is not None:
            self.at = next((s for s in self.state.snaps if s.name == snapshot), None)
            if self.at is None:
                raise rbd.ImageNotFound(f"snapshot {name}@{snapshot}", errno=2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        pass

    def _writable(self):
        if self.read_only:
            raise rbd.ReadOnlyImage(f"{self.state.name} is open read-only", errno=30)

    def get_name(self):
        return self.state.name

    def id(self):
        return self.state.id

    def size(self):
        return self.at.size if self.at else self.state.size

    def resize(self, size):
        self._writable()
        self.state.size = size

    def discard(self, offset, length):
        self._writable()
        self.state.content = None

    def write(self, data, offset):
        """A write at 0 replaces a label (an import's fingerprint) or bytes; elsewhere it
        patches bytes (what a backup's restore writes)."""
        self._writable()
        self.store.calls.append(("write", self.state.name))
        if offset == 0 and not isinstance(self.state.content, bytes):
            self.state.content = bytes(data)
        elif isinstance(self.state.content, bytes) or self.state.content is None:
            old = bytearray(self.state.content or b"")
            old[len(old):offset + len(data)] = bytes(max(0, offset + len(data) - len(old)))
            old[offset:offset + len(data)] = data
            self.state.content = bytes(old)

    def write_zeroes(self, offset, length):
        self.write(bytes(length), offset)

    def read(self, offset, length):
        content = self.at.content if self.at else self.state.content
        return content[offset:offset + length].ljust(length, b"\0") if isinstance(content, bytes) else bytes(length)

    def aio_read(self, offset, length, oncomplete):
        oncomplete(_Completion(0), self.read(offset, length))

    def flush(self):
        pass

    def metadata_list(self):
        return list(self.state.metadata.items())

    def metadata_set(self, key, value):
        self._writable()
        self.store.calls.append(("metadata_set", self.state.name, key))
        self.state.metadata[key] = str(value)

    def metadata_remove(self, key):
        self._writable()
        if key not in self.state.metadata:
            raise KeyError(key)          # what librbd raises for a key that is not there
        del self.state.metadata[key]

    def list_snaps(self):
        return [{"id": s.id, "name": s.name, "namespace": s.namespace, "size": s.size} for s in self.state.snaps]

    def _snap(self, name):
        found = next((s for s in self.state.snaps if s.name == name), None)
        if found is None:
            raise rbd.ImageNotFound(f"snapshot {name}", errno=2)
        return found

    def create_snap(self, name):
        self._writable()
        if any(s.name == name for s in self.state.snaps):
            raise rbd.ImageExists(f"snapshot {name}", errno=17)
        self.state.snaps.append(_Snap(next(self.store.snap_ids), name, self.state))

    def protect_snap(self, name):
        self._snap(name).protected = True

    def unprotect_snap(self, name):
        if self._children(name):
            raise rbd.ImageBusy(f"snapshot {name} has clones", errno=16)
        self._snap(name).protected = False

    def is_protected_snap(self, name):
        return self._snap(name).protected

    def remove_snap(self, name):
        snap = self._snap(name)
        if snap.protected:
            raise rbd.ImageBusy(f"snapshot {name} is protected", errno=16)
        self.state.snaps.remove(snap)

    def snap_get_id(self, name):
        return self._snap(name).id

    def get_snap_timestamp(self, sid):
        return next(s.timestamp for s in self.state.snaps if s.id == sid)

    def snap_get_group_namespace(self, sid):
        return {"group_snap_name": next(s.group_snap for s in self.state.snaps if s.id == sid)}

    def rollback_to_snap(self, name):
        self._writable()
        snap = self._snap(name)
        self.state.size, self.state.content = snap.size, snap.content

    def get_parent_image_spec(self):
        if self.state.parent is None:
            raise rbd.ImageNotFound("no parent", errno=2)
        return {"image_name": self.state.parent[0], "snap_name": self.state.parent[1]}

    def _children(self, snap):
        return [i.name for i in self.store.images.values() if i.parent == (self.state.name, snap)]

    def list_children2(self):
        snaps = [self.at.name] if self.at else [s.name for s in self.state.snaps]
        return [{"image": c} for s in snaps for c in self._children(s)]

    def watchers_list(self):
        return list(self.state.watchers)

    def group(self):
        return {"name": self.state.group or "", "pool": 1 if self.state.group else -1}

    def diff_iterate(self, offset, length, from_snapshot, iterate_cb, include_parent=True, whole_object=False):
        content = self.at.content if self.at else self.state.content
        if from_snapshot is not None and self._snap(from_snapshot).content == content:
            return
        if content is not None:
            iterate_cb(0, min(length, 4 << 20), True)

    def copy(self, ioctx, dst):
        store = ioctx.store
        if dst in store.images:
            raise rbd.ImageExists(dst, errno=17)
        copy = store.images[dst] = _Image(store, dst, self.size())
        copy.content = self.at.content if self.at else self.state.content
        copy.metadata = dict(self.state.metadata)


class _RBD:
    def create(self, ioctx, name, size, *args, **kw):
        store = ioctx.store
        if name in store.images:
            raise rbd.ImageExists(name, errno=17)
        store.calls.append(("create", name))
        store.images[name] = _Image(store, name, size)

    def remove(self, ioctx, name):
        store = ioctx.store
        img = store.image(name)
        if img.snaps:
            raise rbd.ImageHasSnapshots(f"{name} has snapshots", errno=39)
        if img.watchers:
            raise rbd.ImageBusy(f"{name} is open", errno=16)
        if img.group:
            raise rbd.ImageBusy(f"{name} is in group {img.group}", errno=16)
        store.calls.append(("remove", name))
        del store.images[name]

    def clone(self, p_ioctx, p_name, p_snap, c_ioctx, c_name, *args, **kw):
        store = c_ioctx.store
        parent = store.image(p_name)
        snap = next((s for s in parent.snaps if s.name == p_snap), None)
        if snap is None or not snap.protected:
            raise rbd.InvalidArgument(f"{p_name}@{p_snap} is not a protected snapshot", errno=22)
        if c_name in store.images:
            raise rbd.ImageExists(c_name, errno=17)
        child = store.images[c_name] = _Image(store, c_name, snap.size)
        child.parent, child.content = (p_name, p_snap), snap.content
        child.metadata = dict(parent.metadata)

    def list(self, ioctx):
        return sorted(ioctx.store.images)

    def list2(self, ioctx):
        return [{"name": n, "id": i.id} for n, i in sorted(ioctx.store.images.items())]

    def group_create(self, ioctx, name):
        store = ioctx.store
        if name in store.groups:
            raise rbd.ObjectExists(f"group {name}", errno=17)
        store.groups[name] = {"id": f"{next(store.ids):x}", "images": [], "snaps": []}

    def group_list(self, ioctx):
        return sorted(ioctx.store.groups)

    def group_remove(self, ioctx, name):
        store = ioctx.store
        group = store.groups.get(name)
        if group is None:
            raise rbd.ObjectNotFound(f"group {name}", errno=2)
        for image in group["images"]:
            store.images[image].group = None
        del store.groups[name]

    def namespace_exists(self, ioctx, name):
        return name in ioctx.store.namespaces

    def namespace_create(self, ioctx, name):
        ioctx.store.namespaces.add(name)


class _Group:
    def __init__(self, ioctx, name):
        self.store, self.name = ioctx.store, name
        if name not in self.store.groups:
            raise rbd.ObjectNotFound(f"group {name}", errno=2)
        self.state = self.store.groups[name]

    def list_images(self):
        return [{"name": n, "pool": 1, "state": 0} for n in self.state["images"]]

    def add_image(self, ioctx, name):
        img = self.store.image(name)
        if img.group is not None:
            raise rbd.ObjectExists(f"{name} is in group {img.group}", errno=17)
        self.store.calls.append(("group_add", name))
        img.group = self.name
        self.state["images"].append(name)

    def remove_image(self, ioctx, name):
        if name not in self.state["images"]:
            raise rbd.ObjectNotFound(f"{name} is not in group {self.name}", errno=2)
        self.state["images"].remove(name)
        self.store.images[name].group = None

    def list_snaps(self):
        return [{"name": s["name"], "state": s["state"]} for s in self.state["snaps"]]

    def create_snap(self, name):
        if any(s["name"] == name for s in self.state["snaps"]):
            raise rbd.ObjectExists(f"group snapshot {name}", errno=17)
        for image in self.state["images"]:
            img = self.store.images[image]
            img.snaps.append(_Snap(next(self.store.snap_ids), f".group.{name}", img,
                                   rbd.RBD_SNAP_NAMESPACE_TYPE_GROUP, group_snap=name))
        self.state["snaps"].append({"name": name, "state": rbd.RBD_GROUP_SNAP_STATE_COMPLETE})

    def _members(self, name):
        return [(self.store.images[i], s) for i in self.state["images"]
                for s in self.store.images[i].snaps if s.group_snap == name]

    def remove_snap(self, name):
        entry = next((s for s in self.state["snaps"] if s["name"] == name), None)
        if entry is None:
            raise rbd.ObjectNotFound(f"group snapshot {name}", errno=2)
        for img, snap in self._members(name):
            img.snaps.remove(snap)
        self.state["snaps"].remove(entry)

    def rollback_to_snap(self, name):
        if not any(s["name"] == name for s in self.state["snaps"]):
            raise rbd.ObjectNotFound(f"group snapshot {name}", errno=2)
        for img, snap in self._members(name):
            img.size, img.content = snap.size, snap.content


class FakeRbd:
    """The rbd module as the adapters use it: the model's classes, librbd's own exceptions
    and constants."""

    Image, RBD, Group = ImageHandle, _RBD, _Group

    def __getattr__(self, name):
        return getattr(rbd, name)


# -- RADOS
class _ReadOp:
    def __init__(self):
        self.results: list = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


class _Completion:
    def __init__(self, ret: int):
        self.ret = ret

    def wait_for_complete(self):
        pass

    def get_return_value(self):
        return self.ret


class FakeRados:
    ReadOpCtx = _ReadOp

    def __getattr__(self, name):
        return getattr(rados, name)


def _ceph_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<I", len(raw)) + raw


class ScriptedIoctx:
    def __init__(self, store: _Store):
        self.store = store

    def set_namespace(self, ns):
        pass

    def close(self):
        pass

    def get_pool_id(self):
        return 1

    def _object(self, name, create=False):
        if name not in self.store.objects:
            if not create:
                raise rados.ObjectNotFound(name)
            self.store.objects[name] = {"xattrs": {}, "locks": {}}
        return self.store.objects[name]

    # xattrs
    def set_xattr(self, name, key, value):
        self._object(name, create=True)["xattrs"][key] = bytes(value)

    def get_xattr(self, name, key):
        xattrs = self._object(name)["xattrs"]
        if key not in xattrs:
            raise rados.NoData(f"{name} has no xattr {key}")
        return xattrs[key]

    def rm_xattr(self, name, key):
        xattrs = self._object(name)["xattrs"]
        if key not in xattrs:
            raise rados.NoData(f"{name} has no xattr {key}")
        del xattrs[key]

    def remove_object(self, name):
        self._object(name)
        del self.store.objects[name]

    # object data (the event history, the alive stamps)
    def append(self, name, data):
        obj = self._object(name, create=True)
        obj["data"] = obj.get("data", b"") + bytes(data)

    def write_full(self, name, data):
        self._object(name, create=True)["data"] = bytes(data)

    def stat(self, name):
        return len(self._object(name).get("data", b"")), 0

    def read(self, name, length=8192, offset=0):
        self.store.bytes_read = getattr(self.store, "bytes_read", 0) + min(length, max(
            0, len(self._object(name).get("data", b"")) - offset))
        return self._object(name).get("data", b"")[offset:offset + length]

    # cls_lock (expiry is not modelled: a test that needs a stale lock sets one)
    def lock_exclusive(self, name, lock, cookie, desc="", duration=None, flags=0):
        locks = self._object(name, create=True)["locks"]
        holder = locks.get(lock)
        if holder is not None and holder != cookie:
            raise rados.ObjectBusy(f"{name} lock {lock}")
        if holder == cookie and not flags:
            raise rados.ObjectExists(f"{name} lock {lock}")
        locks[lock] = cookie

    def unlock(self, name, lock, cookie):
        locks = self._object(name)["locks"]
        if locks.get(lock) != cookie:
            raise rados.ObjectNotFound(f"{name} lock {lock}")
        del locks[lock]

    # omap reads: librbd's header objects and the group directory, derived from the model
    def _omap_of(self, name) -> dict | None:
        if name == "rbd_group_directory":
            return {f"name_{g}": _ceph_string(v["id"]) for g, v in self.store.groups.items()}
        if name.startswith("rbd_group_header."):
            group = next((g for g in self.store.groups.values() if g["id"] == name[len("rbd_group_header."):]), None)
            if group is None:
                return None
            return {f"snapshot_{i}": b"" for i, _ in enumerate(group["snaps"])}
        if name.startswith("rbd_header."):
            img = next((i for i in self.store.images.values() if i.id == name[len("rbd_header."):]), None)
            if img is None:
                return None
            omap = {f"metadata_{k}": v.encode() for k, v in img.metadata.items()}
            if img.group:
                gid = _ceph_string(self.store.groups[img.group]["id"])
                body = struct.pack("<q", 1) + gid
                omap["rbd_group_ref"] = struct.pack("<BBI", 1, 1, len(body)) + body
            return omap
        return None

    def get_omap_vals(self, op, after, prefix, count):
        it = []
        op.results.append((it, after, prefix, count))
        return it, 0

    def _fill(self, op, name) -> int:
        omap = self._omap_of(name)
        if omap is None:
            return -2
        for it, after, prefix, count in op.results:
            keys = sorted(k for k in omap if k.startswith(prefix) and k > after)[:count]
            it.extend((k, omap[k]) for k in keys)
        return 0

    def operate_read_op(self, op, name):
        if self._fill(op, name) != 0:
            raise rados.ObjectNotFound(name)

    def create_read_op(self):
        return _ReadOp()

    def operate_aio_read_op(self, op, name):
        return _Completion(self._fill(op, name))

    def release_read_op(self, op):
        pass


class _Cluster:
    def __init__(self, ioctx):
        self.ioctx = ioctx
        # the monitors' view maintenance reads and changes: health, CRUSH hosts, group flags
        self.health = {"status": "HEALTH_OK", "checks": {}}
        self.osd_hosts = {"node1": [0]}
        self.osds_down: set = set()
        self.host_flags: dict = {}
        self.mon_calls: list = []
        self.blocklist: list = []

    def get_fsid(self):
        return FSID

    def mon_command(self, cmd, inbuf, timeout=0):
        cmd = json.loads(cmd)
        prefix = cmd.get("prefix")
        self.mon_calls.append(prefix)
        if prefix == "mon dump":
            mons = [{"public_addrs": {"addrvec": [{"type": "v1", "addr": "192.0.2.1:6789"}]}}]
            return 0, json.dumps({"mons": mons}).encode(), ""
        if prefix == "health":
            health = dict(self.health)
            if self.host_flags and "OSD_FLAGS" not in health["checks"]:
                health = {"status": "HEALTH_WARN", "checks": {**health["checks"], "OSD_FLAGS": {
                    "summary": {"message": "1 OSDs or CRUSH nodes have flags set"}}}}
            return 0, json.dumps(health).encode(), ""
        if prefix == "osd tree":
            nodes = [{"id": -1, "name": "default", "type": "root"}]
            for i, (host, osds) in enumerate(self.osd_hosts.items()):
                nodes.append({"id": -2 - i, "name": host, "type": "host", "children": osds})
                nodes += [{"id": o, "name": f"osd.{o}", "type": "osd",
                           "status": "down" if o in self.osds_down else "up"} for o in osds]
            return 0, json.dumps({"nodes": nodes}).encode(), ""
        if prefix == "osd dump":
            every = [o for osds in self.osd_hosts.values() for o in osds]
            osds = [{"osd": o, "up": int(o not in self.osds_down),
                     "public_addrs": {"addrvec": [{"type": "v2", "addr": f"192.0.2.{o + 1}:6800"}]}} for o in every]
            return 0, json.dumps({"crush_node_flags": self.host_flags, "osds": osds}).encode(), ""
        if prefix == "osd blocklist ls":
            return 0, json.dumps([{"addr": a, "until": "2099-01-01"} for a in self.blocklist]).encode(), ""
        if prefix == "osd down":
            self.osds_down |= {int(i.removeprefix("osd.")) for i in cmd["ids"]}
            return 0, b"", ""
        if prefix in ("osd set-group", "osd unset-group"):
            for who in cmd["who"]:
                flags = set(self.host_flags.get(who, []))
                flags = flags | {cmd["flags"]} if prefix == "osd set-group" else flags - {cmd["flags"]}
                self.host_flags[who] = sorted(flags)
                if not flags:
                    del self.host_flags[who]
            return 0, b"", ""
        return -22, b"", "not modelled"

    def conf_get(self, key):
        return ""

    def pool_lookup(self, pool):
        return 2

    def open_ioctx(self, pool):
        return self.ioctx

    def wait_for_latest_osdmap(self):
        pass


class ScriptedCeph:
    """A Ceph session over the in-memory model (the attributes and methods of
    helpers.ceph.session.Session the adapters use)."""

    rbd = FakeRbd()
    rados = FakeRados()
    osd_op_timeout = 60

    def __init__(self, pool: str = "rbd", namespace: str = ""):
        self.target = CephTarget(conf="/scripted/ceph.conf", client_id="rbdvm", pool=pool, namespace=namespace)
        self.store = _Store()
        self.ioctx = ScriptedIoctx(self.store)
        self.cluster = _Cluster(self.ioctx)
        self.signing_key = signing.SigningKey(b"k" * 64, "the unit tests' key")
        self.device_policy = devpolicy.Policy(source="the built-in policy (unit tests)")

    def fsid(self):
        return FSID

    def namespace_exists(self):
        return self.target.namespace in self.store.namespaces

    def ensure_namespace(self):
        self.store.namespaces.add(self.target.namespace)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    # what a test sets up or looks at
    def open_by(self, image: str, addr: str = "192.0.2.20:0/1234") -> None:
        """A client (a running QEMU) holds `image` open."""
        self.store.image(image).watchers.append({"addr": addr})


# ------------------------------------------------------------------ Pacemaker
EMPTY_CIB = ("<cib><configuration><crm_config/><nodes><node id='1' uname='node1'/><node id='2' uname='node2'/>"
             "</nodes><resources/><constraints/></configuration><status/></cib>")


class ScriptedPacemaker:
    """Pacemaker's tools answered from an in-memory CIB. An enabled VM whose target-role is
    Started runs on `running[vm]` (default: the first node; None: it does not start), or on
    the first node not drained when that one is; one whose target-role is Stopped is Stopped."""

    def __init__(self, nodes=("node1", "node2")):
        self.cib = etree.fromstring(EMPTY_CIB)
        self.nodes = list(nodes)
        self.running: dict = {}
        self.stranded: set = set()  # VMs that may run nowhere else than where they run
        self.failures: list = []
        self.calls: list = []
        self.fail: dict = {}        # tool -> message: that tool fails
        self.local = "elsewhere"    # the node the command runs on (crm_node --name)

    def section(self, name: str):
        found = self.cib.find(f"configuration/{name}")
        if found is None:
            # cibadmin --allow-create makes an optional section (alerts) as it merges
            found = etree.SubElement(self.cib.find("configuration"), name)
        return found

    def __call__(self, argv, timeout=30, until=None):
        self.calls.append(list(argv))
        tool = argv[0]
        if tool in self.fail:
            raise ClusterUnavailable(f"{tool} failed", self.fail[tool], code="PACEMAKER_UNAVAILABLE")
        return getattr(self, "_" + tool.replace("-", "_"))(argv[1:])

    def writes(self) -> list:
        """The calls that change the cluster (what a command wrote)."""
        readers = {("cibadmin", "--query"), ("crm_mon",), ("crm_resource", "--wait"), ("crm_node",)}
        return [c for c in self.calls if tuple(c[:2]) not in readers and tuple(c[:1]) not in readers]

    # -- readers
    def _crm_node(self, args):
        return self.local + "\n"

    def _crm_mon(self, args):
        out = etree.Element("pacemaker-result")
        nodes = etree.SubElement(out, "nodes")
        for n in self.nodes:
            etree.SubElement(nodes, "node", name=n, online="true", standby="false", maintenance="false")
        resources = etree.SubElement(out, "resources")
        drained = {n.get("uname") for n in self.section("nodes")
                   if n.find("instance_attributes/nvpair[@name='rbdvm-no-vms'][@value='true']") is not None}
        for prim in self.section("resources").iter("primitive"):
            vm = prim.get("id")
            role = prim.find("meta_attributes/nvpair[@name='target-role']")
            wanted = role is None or role.get("value") == "Started"
            node = self.running.get(vm, self.nodes[0]) if wanted else None
            if node in drained:
                node = None if vm in self.stranded else next((n for n in self.nodes if n not in drained), None)
            r = etree.SubElement(resources, "resource", id=vm, resource_agent="ocf:rbdvm:VirtualDomain",
                                 role="Started" if node else "Stopped", active="true" if node else "false",
                                 failed="false")
            if role is not None:
                r.set("target_role", role.get("value"))
            if node:
                etree.SubElement(r, "node", name=node)
        if self.failures:
            failures = etree.SubElement(out, "failures")
            for f in self.failures:
                etree.SubElement(failures, "failure", **f)
        return etree.tostring(out, encoding="unicode")

    def _cibadmin(self, args):
        if args[0] == "--query":
            scope = args[args.index("--scope") + 1] if "--scope" in args else None
            el = self.section(scope) if scope else self.cib
            return etree.tostring(el, encoding="unicode")
        if args[0] == "--modify":
            self._merge(etree.fromstring(args[args.index("--xml-text") + 1]))
        elif args[0] == "--replace":
            new = etree.fromstring(args[args.index("--xml-text") + 1])
            section = "constraints" if new.tag.startswith("rsc_") else "resources"
            old = self.section(section).find(f"{new.tag}[@id='{new.get('id')}']")
            old.getparent().replace(old, new)
        elif args[0] == "--delete":
            for el in self.cib.xpath(args[args.index("--xpath") + 1]):
                el.getparent().remove(el)
        return ""

    def _merge(self, section) -> None:
        """cibadmin --modify --allow-create: elements matched by id, created if missing."""
        if section.tag == "configuration":
            for child in section:
                self._merge(child)
            return
        target = self.section(section.tag)
        for el in section:
            old = target.find(f"*[@id='{el.get('id')}']")
            if old is not None:
                target.replace(old, el)
            else:
                target.append(el)

    def _crm_resource(self, args):
        if "--wait" in args:
            return ""
        vm = args[args.index("--resource") + 1] if "--resource" in args else None
        if "--move" in args:
            self.running[vm] = args[args.index("--node") + 1]
        if "--meta" in args:
            prim = self.section("resources").find(f"primitive[@id='{vm}']")
            name, value = args[args.index("--set-parameter") + 1], args[args.index("--parameter-value") + 1]
            meta = prim.find("meta_attributes")
            if meta is None:
                meta = etree.SubElement(prim, "meta_attributes", id=f"{vm}-meta_attributes")
            pair = meta.find(f"nvpair[@name='{name}']")
            if pair is None:
                pair = etree.SubElement(meta, "nvpair", id=f"{vm}-meta_attributes-{name}", name=name)
            pair.set("value", value)
        return ""

    def _crm_attribute(self, args):
        """Node attributes (what drain and resume set) into the CIB's nodes section; cluster
        options into crm_config."""
        kind, name = args[args.index("--type") + 1], args[args.index("--name") + 1]
        if kind == "crm_config":
            parent, tag, block_id = self.section("crm_config"), "cluster_property_set", "cib-bootstrap-options"
        elif kind == "nodes" and "--node" in args:
            parent = self.section("nodes").find(f"node[@uname='{args[args.index('--node') + 1]}']")
            tag, block_id = "instance_attributes", f"nodes-{parent.get('id')}"
        else:
            return ""
        block = parent.find(tag)
        if block is None:
            block = etree.SubElement(parent, tag, id=block_id)
        for old in block.findall(f"nvpair[@name='{name}']"):
            block.remove(old)
        if "--update" in args:
            etree.SubElement(block, "nvpair", id=f"{block_id}-{name}", name=name,
                             value=args[args.index("--update") + 1])
        return ""

    def _stonith_admin(self, args):
        return "<pacemaker-result/>"


# ------------------------------------------------------------------ the environment
class Imports:
    """The disk importer: records each import (the file's fingerprint lands in the image)."""

    def __init__(self, ceph: ScriptedCeph):
        self.ceph, self.done = ceph, []

    def __call__(self, disk, target, image, adopt=None, progress=None):
        self.done.append((disk.path, image))
        self.ceph.store.image(image).content = disk.fingerprint


def no_libvirt(uri, vm):
    raise AssertionError(f"this test did not expect a libvirt call ({uri}, {vm})")


def scripted_env(ceph: ScriptedCeph | None = None, pacemaker: ScriptedPacemaker | None = None) -> Env:
    ceph = ceph or ScriptedCeph()
    pacemaker = pacemaker or ScriptedPacemaker()
    env = Env(session=ceph, open_session=lambda target, **kw: ceph, cluster=Cluster(run=pacemaker, available=True),
              open_domain=no_libvirt, import_disk=Imports(ceph), now=lambda: NOW,
              uefi_variables=lambda request: ("template /scripted/VARS.fd", UEFI_TEMPLATE))
    env.pacemaker = pacemaker        # what a test reads back
    return env


# ------------------------------------------------------------------ helpers for the tests
UEFI_TEMPLATE = b"VARS" * 1024     # what the scripted firmware's template holds
UEFI_BASE_XML = ("<domain type='kvm'><name>x</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                 "<os firmware='efi'><type arch='x86_64' machine='q35'>hvm</type>"
                 "<firmware><feature enabled='no' name='secure-boot'/></firmware></os><devices/></domain>")
BASE_XML = ("<domain type='kvm'><name>x</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64' machine='q35'>hvm</type></os><devices/></domain>")


def disk_file(tmp_path, name: str = "disk.raw", size: int = 1 << 20, fill: bytes = b"\0") -> str:
    """A raw disk image file the operations import (diskimage.inspect reads it for real)."""
    path = tmp_path / name
    path.write_bytes(fill * size)
    return str(path)


def cut(monkeypatch, step: str, fn, *args, **kw) -> None:
    """Run fn, stopped at checkpoint `step` (faults.Cut): what a kill there leaves behind,
    as one process sees it."""
    from rbdvm.helpers.core.faults import Cut

    monkeypatch.setenv("RBDVM_CUT_AT", step)
    try:
        fn(*args, **kw)
    except Cut:
        pass
    else:
        raise AssertionError(f"the operation never reached checkpoint {step}")
    finally:
        monkeypatch.delenv("RBDVM_CUT_AT")
