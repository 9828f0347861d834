"""The project's error types: each carries a stable code, the objects it is about, and a
message an operator can act on (what failed, why, what to do).

pcs's reports are the model: a front end may show the message, or act on `code` and
`details` (the CLI's `--json` prints them as {"error": {...}}; scripts and the Ansible module
can tell "VM_BUSY" from "VM_NOT_FOUND" without reading prose). Codes are listed once, in
CODES; a unit test fails on a code used anywhere that is not listed there, and
docs/errors.md shows the same table.
"""

from collections.abc import Iterable

from .hints import Hint, render

# code -> what it means; the exit code comes from the error's type
CODES = {
    # one per type, when nothing more precise applies
    "FAILED": "the operation failed; the message says why",
    "INVALID_INPUT": "an input (name, option, file, setting) is not valid",
    "NOT_FOUND": "what was named does not exist",
    "CONFLICT": "the object exists already, is busy, or is in a state that forbids the operation",
    "UNAVAILABLE": "Ceph, libvirt or Pacemaker could not be reached or refused rbdvm",
    "UNTRUSTED": "what a node would act on is not signed by this cluster or breaks the device policy",
    # inputs
    "INVALID_NAME": "a VM, snapshot or metadata-key name is not letters and digits, or not usable as a "
                    "Pacemaker resource id",
    "RESERVED_KEY": "a metadata key is reserved for rbdvm's own records",
    "INVALID_SETTING": "a setting's value is not valid for that setting",
    "INVALID_DEFINITION": "a libvirt domain definition is not valid XML or not a domain",
    "FIRMWARE_NOT_FOUND": "no UEFI firmware on the node fits the definition, or its variables template is "
                          "unreadable",
    "INVALID_DISK_IMAGE": "a disk image file is missing, unreadable or not a format rbdvm imports",
    "NOT_A_NODE": "the node named is not one of the cluster's nodes",
    "NOT_A_HYPERVISOR": "the node named runs no VM: rbdvm's agent found no hypervisor there (an observer)",
    # VMs
    "VM_NOT_FOUND": "no VM of that name in the pool and namespace",
    "VM_EXISTS": "a VM of that name exists already",
    "VM_BUSY": "another rbdvm command holds the VM's lease",
    "BACKUP_DIR_BUSY": "another backup, prune or restore of the VM is using its backup directory",
    "VM_RUNNING": "the VM runs, and the operation needs it stopped",
    "VM_NOT_RUNNING": "the VM does not run, and the operation needs it running",
    "VM_ENABLED": "the VM is enabled in the cluster, and the operation needs it disabled",
    "N_PLUS_ONE": "the change would leave VMs that could not restart anywhere if one node were lost",
    "VM_NOT_ENABLED": "the VM has no Pacemaker resource",
    "VM_INCOMPLETE": "a create, clone, remove or rollback of the VM was interrupted",
    "VM_BROKEN": "the VM's images or records are inconsistent",
    "NOT_RBDVM": "the group or image belongs to another tool, and rbdvm leaves it alone",
    "IMAGE_TAKEN": "an image the operation would make exists already and is not the VM's",
    "HAS_CLONES": "copy-on-write clones depend on what would be removed",
    "RESTART_NEEDED": "the change would restart a running VM, and no restart was allowed",
    # snapshots and disks
    "SNAPSHOT_NOT_FOUND": "the VM has no snapshot of that name",
    "SNAPSHOT_EXISTS": "the VM has a snapshot of that name already",
    "SNAPSHOT_INCOMPLETE": "the snapshot does not hold every disk of the VM",
    "DISK_NOT_FOUND": "the VM has no disk of that name",
    "KEY_NOT_FOUND": "the VM has no metadata key of that name",
    "SHRINK_REFUSED": "a disk would be made smaller, cutting off its data",
    # backups
    "BACKUP_NOT_FOUND": "the backup directory holds no backup of that VM, id or time",
    "BACKUP_BROKEN": "a backup's chain is broken or a file of it is missing, damaged or not rbdvm's",
    # the outside parts
    "CEPH_UNAVAILABLE": "the Ceph cluster could not be reached, or refused this client",
    "PACEMAKER_UNAVAILABLE": "Pacemaker's tools are missing, failed or did not answer",
    "LIBVIRT_UNAVAILABLE": "a node's libvirtd could not be reached or refused the call",
    "FENCE_BUSY": "another node is fencing right now",
    "CEPH_UNHEALTHY": "Ceph is not healthy enough to let a node's OSDs go down",
    "NOWHERE_TO_GO": "a VM on the node could run on no other node",
    "SIGNING_SECRET": "the node's signing secret is missing or not private to root",
    "AGENT_PACKAGED": "the agents on this node are the rbdvm package's, which only a package upgrade replaces",
}


class RbdvmError(Exception):
    """Base of every error rbdvm reports to an operator.

    `exit_code` is what the CLI exits with; the table lives in EXIT_CODES so that
    `rbdvm --help` documents exactly what the code does. `code` is the stable name of what
    went wrong (CODES), `details` the objects it is about ({"vm": ..., "snapshot": ...}),
    `problems` the errors of an input that has several (each is reported, not the first).
    """

    exit_code = 1
    default_code = "FAILED"

    def __init__(self, what: str, why: str = "", fix: str = "", hint: Hint | None = None, *,
                 code: str | None = None, details: dict | None = None, problems: Iterable["RbdvmError"] = ()):
        """`fix`: what to do, in words any front end can show; `hint`: a fix that depends on
        the front end (a flag, a parameter), worded by each one (core/hints.py)."""
        self.what, self.why, self.fix, self.hint = what, why, fix, hint
        self.code = code or self.default_code
        if self.code not in CODES:
            raise ValueError(f"error code {self.code!r} is not in errors.CODES")
        self.details = dict(details or {})
        self.problems = list(problems)
        super().__init__(self.message)

    def reworded(self, what: str) -> "RbdvmError":
        """The same error saying `what` failed (for a caller that knows more of the story)."""
        self.what = what
        self.args = (self.message,)
        return self

    @property
    def message(self) -> str:
        return self.message_for({})

    def message_for(self, hint_table: dict) -> str:
        """The message, its hint worded from a front end's table."""
        text = self.what + (f": {self.why}" if self.why else "")
        fix = self.fix_for(hint_table)
        return text + (f". {fix}" if fix else "")

    def fix_for(self, hint_table: dict) -> str:
        return self.fix or (render(self.hint, hint_table) if self.hint else "")

    def as_dict(self, hint_table: dict) -> dict:
        """What a machine reads: the code, the objects, the message in parts and the exit code."""
        out = {"code": self.code, "exit_code": self.exit_code, "message": self.message_for(hint_table),
               "what": self.what, "why": self.why, "fix": self.fix_for(hint_table), "details": self.details}
        if self.problems:
            out["problems"] = [p.as_dict(hint_table) for p in self.problems]
        return out


class UsageError(RbdvmError):
    """Bad input from the operator: a name, a file, an option."""

    exit_code = 2
    default_code = "INVALID_INPUT"


class NotFound(RbdvmError):
    exit_code = 3
    default_code = "NOT_FOUND"


class Conflict(RbdvmError):
    """The object exists already, is busy, or is in a state that forbids the operation."""

    exit_code = 4
    default_code = "CONFLICT"


class ClusterUnavailable(RbdvmError):
    """Ceph, libvirt or Pacemaker could not be reached or refused us."""

    exit_code = 5
    default_code = "UNAVAILABLE"


class Untrusted(RbdvmError):
    """What a node would act on as root is not signed by this cluster, or breaks its device
    policy: nothing runs until root reviews and accepts it."""

    exit_code = 6
    default_code = "UNTRUSTED"


class Problems:
    """Checks of one input that report every problem, not the first:

        found = Problems()
        for key, value in given.items():
            with found.check():
                check(key, value)
        found.raise_if_any("the settings of VM vm1 are not valid")
    """

    def __init__(self) -> None:
        self.errors: list = []

    def check(self) -> "_Catch":
        return _Catch(self.errors)

    def raise_if_any(self, what: str) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            first = self.errors[0]
            raise type(first)(what, "; ".join(e.message for e in self.errors),
                              code=first.code if len({e.code for e in self.errors}) == 1 else None,
                              problems=self.errors)


class _Catch:
    """Collects a UsageError raised inside; lets anything else through."""

    def __init__(self, into: list) -> None:
        self.into = into

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if isinstance(exc, UsageError):
            self.into.append(exc)
            return True
        return False


EXIT_CODES = {
    0: "success",
    RbdvmError.exit_code: "operation failed (the message says why)",
    UsageError.exit_code: "bad usage: invalid name, option or file",
    NotFound.exit_code: "the VM, snapshot or key does not exist",
    Conflict.exit_code: "conflict: already exists, busy, or in use",
    ClusterUnavailable.exit_code: "Ceph, libvirt or Pacemaker unreachable or permission denied",
    Untrusted.exit_code: "the VM's definition or settings are not signed by this cluster, or break "
                         "the device policy",
}
