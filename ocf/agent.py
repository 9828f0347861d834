"""ocf:rbdvm:VirtualDomain: the entry point, dispatching each action to the module that holds
it (monitor, start, stop, migration, validate, metadata) and applying the error policy.

Only the action asked for is imported: monitor (every few seconds, on every node) loads
libvirt and the standard library only, never Ceph (and lxml only for a config= resource,
whose domain name is read from its file through the one hardened parser).
"""

import importlib
import os
import sys
import time

from rbdvm.helpers.core import timeouts
from rbdvm.helpers.core.bounded import abandoned

from . import basics, hostrole, log
from .codes import (
    OCF_ERR_ARGS,
    OCF_ERR_CONFIGURED,
    OCF_ERR_GENERIC,
    OCF_ERR_INSTALLED,
    OCF_ERR_UNIMPLEMENTED,
    OCF_NOT_RUNNING,
    OCF_SUCCESS,
    AgentError,
)
from .params import Params

USAGE = "usage: VirtualDomain {start|stop|monitor|status|migrate_to|migrate_from|meta-data|validate-all|usage}"

# action -> (module, function): the module is imported when the action runs
ACTIONS_TABLE = {"start": ("start", "start"), "stop": ("stop", "stop"), "monitor": ("monitor", "monitor"),
                 "status": ("monitor", "monitor"), "migrate_to": ("migration", "migrate_to"),
                 "migrate_from": ("migration", "migrate_from"), "validate-all": ("validate", "validate")}

# a failing stop means fencing, a failing probe means recovery: these take bad optional
# parameters with a warning; start, migrations and validate-all refuse them
LENIENT = {"stop", "monitor", "status"}


def handler(action: str):
    module, function = ACTIONS_TABLE[action]
    return getattr(importlib.import_module(f"{__package__}.{module}"), function)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    action = argv[0] if argv else ""
    if action == "meta-data":
        return importlib.import_module(f"{__package__}.metadata").action()
    if action in ("usage", "help"):
        print(USAGE)
        return OCF_SUCCESS
    if action not in ACTIONS_TABLE:
        print(USAGE, file=sys.stderr)
        return OCF_ERR_UNIMPLEMENTED if action else OCF_ERR_ARGS
    try:
        p = Params(strict=action not in LENIENT)
    except AgentError as exc:
        log.exit_reason(str(exc))
        return OCF_ERR_CONFIGURED
    for problem in p.ignored:
        log.warn(f"{problem} (a {action} does not fail for it; validate-all and start do)")
    why = hostrole.missing(p.hypervisor)
    if why is not None:
        return _no_hypervisor(action, why)
    code = _run(action, p)
    if abandoned:
        # a thread is still blocked in libvirt (or DNS): leave without waiting for it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _no_hypervisor(action: str, why: str) -> int:
    """On a node without a hypervisor nothing can run: a stop has nothing to do, every other
    action answers "not installed" (a probe's masks it into "stopped, never here")."""
    if action == "stop":
        log.info(f"{why}; nothing to stop")
        return OCF_SUCCESS
    log.exit_reason(why)
    return OCF_ERR_INSTALLED


def _run(action: str, p: Params) -> int:
    try:
        return handler(action)(p)
    except AgentError as exc:
        if action == "stop" and exc.code == OCF_ERR_CONFIGURED:
            exc.code = OCF_ERR_GENERIC   # a stop that cannot be done must not look like a config error
        log.exit_reason(str(exc))
        return exc.code
    except Exception as exc:  # noqa: BLE001 - the cluster gets a reason, never a traceback
        reason = f"{action} failed unexpectedly: {type(exc).__name__}: {exc}"
        if action in LENIENT:
            return _last_resort(action, p, reason)
        log.exit_reason(reason)
        return OCF_ERR_GENERIC


def _last_resort(action: str, p: Params, reason: str) -> int:
    """An unexpected error in stop or monitor: answer from the process table rather than
    with a failure (a failed probe means recovery, a failed stop means fencing)."""
    log.error(f"{reason}; answering from the process table")
    try:
        name = basics.known_name(p)
        if name is None:
            return OCF_SUCCESS if action == "stop" else OCF_NOT_RUNNING
        if action == "stop":
            from .stop import stop_from_process_table

            until = time.monotonic() + timeouts.AGENT_KILL_RESERVE + timeouts.AGENT_LIBVIRT
            return stop_from_process_table(name, until)
        from .monitor import monitor_from_process_table

        return monitor_from_process_table(name, reason)
    except AgentError as exc:
        log.exit_reason(str(exc))
        return exc.code
    except Exception as exc:  # noqa: BLE001
        log.exit_reason(f"{reason}; and from the process table: {type(exc).__name__}: {exc}")
        return OCF_ERR_GENERIC
