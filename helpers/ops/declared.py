"""A VM as a declaration describes it (Ansible's `state:`, a site's list of VMs): how the
stored VM differs from it, and the steps that make it so.

`plan` only reads (Ceph and one cluster status), so a front end can show what would change
(check mode, a diff) and change nothing; `apply` runs the planned steps with the same
operations the CLI runs. Re-running after an interruption plans only what is left.
"""

from dataclasses import dataclass, field

from lxml import etree

from ..ceph import diskimage, trust, vmstore
from ..core import defaults, domainxml, names, vmschema, xmlsafe
from ..core.errors import UsageError
from ..core.vmschema import VmState
from ..pacemaker import crm_mon
from . import configure, creation, editing, lifecycle, metadata
from .env import Env

# state -> (the VM exists, it is under Pacemaker, the role it has there: None = as it is)
STATES = {
    "absent": (False, False, None),
    "present": (True, None, None),
    "enabled": (True, True, None),
    "started": (True, True, "Started"),
    "stopped": (True, True, "Stopped"),
}


@dataclass(frozen=True)
class Declared:
    """What a declaration says of VM `name`. Settings and metadata not named are left as
    they are; `xml` and `image` are needed only to create it."""
    name: str
    state: str = "present"
    xml: str | None = None
    image: str | None = None
    data_images: tuple = ()
    metadata: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)     # {setting: value}, None = as it is
    start_when_enabled: bool = True                  # a VM put under Pacemaker now starts
    allow_restart: bool = False                      # a change may restart a running VM

    @property
    def given_settings(self) -> dict:
        return {k: v for k, v in self.settings.items() if v is not None}

    @property
    def given_metadata(self) -> dict:
        """Metadata values as they are stored: text."""
        return {k: str(v) for k, v in self.metadata.items()}


@dataclass
class Step:
    action: str        # create | edit | set | metadata | enable | start | stop | remove
    what: str          # for people: "create VM x", "set priority 1 -> 5"
    args: dict = field(default_factory=dict)


@dataclass
class Plan:
    name: str
    steps: list
    before: dict       # {definition, settings, metadata, status}: the VM now
    after: dict        # the VM once the steps ran

    @property
    def changed(self) -> bool:
        return bool(self.steps)


def same_definition(a: str | None, b: str | None) -> bool:
    """Two base definitions are the same once parsed (whitespace between elements, attribute
    order and quoting do not count)."""
    if a is None or b is None:
        return a is b
    return _canonical(a, "the stored base definition") == _canonical(b, "the declared definition")


def _canonical(text: str, source: str) -> bytes:
    root = xmlsafe.parse(text, source)
    for el in root.iter():
        if el.text is not None and not el.text.strip() and len(el):
            el.text = None
        if el.tail is not None and not el.tail.strip():
            el.tail = None
    return etree.tostring(root, method="c14n")


def snapshot(env: Env, name: str, status=None, removing: bool = False) -> dict:
    """{exists, definition, settings, metadata, data_disks, status} of VM `name` now, from one
    read of it. A VM left half made by an interrupted create is not there yet ("leftover"),
    to be created again; one half removed or broken is refused unless `removing` it."""
    return _read(env, name, status, removing)[0]


def _read(env: Env, name: str, status, removing: bool) -> tuple:
    """(snapshot, the system disk's metadata or None)."""
    session = env.session
    names.check_name(name, "VM name")
    rec = vmstore.record(session, name)
    status = env.cluster.cluster_status() if status is None else status
    st = crm_mon.vm_status(status, name, rec.state != VmState.ABSENT)
    if rec.state == VmState.ABSENT:
        return {"exists": False, "status": st["status"]}, None
    if rec.state == VmState.CREATING or (removing and rec.state in (VmState.REMOVING, VmState.BROKEN)):
        return {"exists": False, "leftover": rec.state, "status": st["status"]}, None
    vmstore.refuse_incomplete(session, rec)
    md = rec.metadata
    return {"exists": True, "definition": md.get(vmschema.BASE_XML), "settings": vmschema.decode(md),
            "metadata": {k: v for k, v in sorted(md.items()) if vmschema.is_user_key(k)},
            "data_disks": len(rec.disks) - 1, "status": st["status"]}, md


def plan(env: Env, d: Declared, status=None) -> Plan:
    if d.state not in STATES:
        raise UsageError(f"unknown state {d.state!r}", f"one of {', '.join(STATES)}")
    exists, enabled, role = STATES[d.state]
    now, md = _read(env, d.name, status, removing=not exists)
    steps: list = []
    if not exists:
        if now["exists"] or now.get("leftover"):
            steps.append(Step("remove", f"remove VM {d.name} (disabling it first if it is enabled)"))
        after = {"exists": False, "status": "Undefined"}
        return Plan(d.name, steps, now, after)
    settings = d.given_settings
    vmschema.check_user_metadata(d.metadata)    # here too, so that check mode refuses what a run would
    if not now["exists"]:
        if d.xml is None or d.image is None:
            raise UsageError(f"VM {d.name} does not exist", "creating it needs its base definition and its "
                                                             "system image", "Give both")
        _check_create(env, d)
        steps.append(Step("create", ("finish creating" if now.get("leftover") else "create")
                          + f" VM {d.name} from {d.image}"))
        stored_settings = vmschema.decode(vmschema.encode(settings))
        stored_settings.setdefault("disk_bus", defaults.DISK_BUS)     # what create stores
        after = {"exists": True, "definition": d.xml, "settings": stored_settings,
                 "metadata": dict(sorted(d.metadata.items())), "data_disks": len(d.data_images),
                 "status": "Disabled"}
    else:
        after = {**now, "settings": dict(now["settings"]), "metadata": dict(now["metadata"])}
        if d.xml is not None and not same_definition(now["definition"], d.xml):
            steps.append(Step("edit", f"give VM {d.name} the declared definition"))
            after["definition"] = d.xml
        wanted = vmschema.decode(vmschema.encode(configure.merged(md, settings))) if settings else now["settings"]
        changes = {k: v for k, v in settings.items() if wanted.get(k) != now["settings"].get(k)}
        if changes:
            steps.append(Step("set", "change " + ", ".join(
                f"{k} {now['settings'].get(k)!r} -> {wanted.get(k)!r}" for k in sorted(changes)),
                {"changes": changes}))
            after["settings"] = wanted
        different = {k: v for k, v in d.given_metadata.items() if now["metadata"].get(k) != v}
        if different:
            steps.append(Step("metadata", "set metadata " + ", ".join(sorted(different)), {"values": different}))
            after["metadata"] = dict(sorted({**now["metadata"], **different}.items()))
        if d.data_images and len(d.data_images) != now["data_disks"]:
            raise UsageError(f"VM {d.name} has {now['data_disks']} additional disks, the declaration "
                             f"{len(d.data_images)}", "additional disks are imported only when a VM is created",
                             "Add or remove its disks one by one, or leave them out of the declaration")
    status = after["status"]
    if enabled and status in ("Disabled", "Undefined"):
        start = role == "Started" or (role is None and d.start_when_enabled)
        steps.append(Step("enable", f"put VM {d.name} under Pacemaker" + (" and start it" if start else ", stopped"),
                          {"start": start}))
        status = "Started" if start else "Stopped"
    elif role == "Started" and status != "Started":
        steps.append(Step("start", f"start VM {d.name}"))
        status = "Started"
    elif role == "Stopped" and status != "Stopped":
        steps.append(Step("stop", f"stop VM {d.name}"))
        status = "Stopped"
    after["status"] = status
    return Plan(d.name, steps, now, after)


def _check_create(env: Env, d: Declared) -> None:
    """What a create would refuse, found while planning: a plan (check mode) that says
    "create" is one the create carries out."""
    session = env.session
    assert d.xml is not None and d.image is not None
    names.check_new_vm_name(d.name)      # the settings: checked by plan() as it encodes them
    domainxml.parse(d.xml, "the declared definition")
    for path in (d.image, *d.data_images):
        diskimage.inspect(path)
    trust.require_policy(session, d.name, d.xml, f"cannot create VM {d.name}")


def apply(env: Env, d: Declared, p: Plan) -> list:
    """Run the plan's steps in order; returns what each did."""
    done = []
    for step in p.steps:
        if step.action == "remove":
            out = lifecycle.remove(env, d.name, force=True)
        elif step.action == "create":
            assert d.image is not None and d.xml is not None    # plan() refused a create without them
            out = creation.create(env, d.name, d.image, d.xml, data_images=d.data_images,
                                   metadata=d.given_metadata, settings=d.given_settings)
        elif step.action == "edit":
            out = editing.edit(env, d.name, base_xml=d.xml, restart=d.allow_restart)
        elif step.action == "set":
            out = configure.set_settings(env, d.name, step.args["changes"], restart=d.allow_restart)
        elif step.action == "metadata":
            for key, value in step.args["values"].items():
                metadata.set_metadata(env, d.name, key, value)
            out = {"set": sorted(step.args["values"])}
        elif step.action == "enable":
            out = lifecycle.enable(env, d.name, start=step.args["start"])
        elif step.action == "start":
            out = lifecycle.start(env, d.name)
        else:
            out = lifecycle.stop(env, d.name)
        done.append({"action": step.action, "what": step.what, "result": out})
    return done
