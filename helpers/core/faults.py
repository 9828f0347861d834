"""Named points inside long operations where tests pull the plug.

RBDVM_FAULT_AT=<step> makes the process SIGKILL itself on reaching that step: exactly what a
power cut or `kill -9` does there, so the tests prove that re-running the command converges
from every step, not only from the ones a timer happens to hit. RBDVM_PAUSE_AT=<step> makes
its process group SIGSTOP itself there instead (rbdvm and the qemu-img it runs): a host that
freezes, until someone sends SIGCONT. RBDVM_CUT_AT=<step> raises Cut there: the operations'
unit tests stop an operation at a step inside one process and run it again. Unset, each
costs a lookup.
"""

import os
import signal


class Cut(BaseException):
    """An operation stopped at a checkpoint (RBDVM_CUT_AT): nothing after it ran. A
    BaseException, so no `except Exception` on the way catches it."""


def checkpoint(step: str) -> None:
    if os.environ.get("RBDVM_FAULT_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("RBDVM_PAUSE_AT") == step:
        os.killpg(os.getpgrp(), signal.SIGSTOP)
    if os.environ.get("RBDVM_CUT_AT") == step:
        raise Cut(step)
