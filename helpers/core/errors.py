"""The project's error types: each carries a message an operator can act on."""

from .hints import Hint, render


class RbdvmError(Exception):
    """Base of every error rbdvm reports to an operator.

    `exit_code` is what the CLI exits with; the table lives in EXIT_CODES so that
    `rbdvm --help` documents exactly what the code does.
    """

    exit_code = 1

    def __init__(self, what: str, why: str = "", fix: str = "", hint: Hint | None = None):
        """`fix`: what to do, in words any front end can show; `hint`: a fix that depends on
        the front end (a flag, a parameter), worded by each one (core/hints.py)."""
        self.what, self.why, self.fix, self.hint = what, why, fix, hint
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
        fix = self.fix or (render(self.hint, hint_table) if self.hint else "")
        text = self.what + (f": {self.why}" if self.why else "")
        return text + (f". {fix}" if fix else "")


class UsageError(RbdvmError):
    """Bad input from the operator: a name, a file, an option."""

    exit_code = 2


class NotFound(RbdvmError):
    exit_code = 3


class Conflict(RbdvmError):
    """The object exists already, is busy, or is in a state that forbids the operation."""

    exit_code = 4


class ClusterUnavailable(RbdvmError):
    """Ceph, libvirt or Pacemaker could not be reached or refused us."""

    exit_code = 5


class Untrusted(RbdvmError):
    """What a node would act on as root is not signed by this cluster, or breaks its device
    policy: nothing runs until root reviews and accepts it."""

    exit_code = 6


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
