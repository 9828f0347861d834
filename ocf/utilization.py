"""Resource utilization (cpu, hv_memory) from the domain definition, written to the CIB only
when it changed: the last values written on this node are remembered in $HA_RSCTMP, so no
monitor ever forks. The memory is forgotten when the domain leaves this node (stop,
migrate_to), so a resource deleted and created again gets its utilization again."""

import os
import time

from rbdvm.helpers.core import domainxml
from rbdvm.helpers.core.errors import RbdvmError
from rbdvm.helpers.pacemaker import runner

from . import log, rsctmp

KIND = "utilization"


def values(xml: str) -> dict:
    try:
        return domainxml.utilization(xml)
    except RbdvmError as exc:
        log.warn(f"no utilization from the definition: {exc}")
        return {}


def update(rsc: str, xml: str, cpu: bool, hv_memory: bool, until: float) -> None:
    """Write what changed, giving up (with a warning: utilization is not worth a failed
    start) when `until` comes."""
    wanted = {k: v for k, v in values(xml).items() if (k == "cpu" and cpu) or (k == "hv_memory" and hv_memory)}
    text = " ".join(f"{k}={v}" for k, v in sorted(wanted.items()))
    if rsctmp.recall(KIND, rsc) == text:
        return
    for key, value in wanted.items():
        argv = ["crm_resource", "--resource", rsc, "--utilization", "--set-parameter", key,
                "--parameter-value", str(value)]
        try:
            runner.run(argv, until=until)
        except RbdvmError as exc:
            log.warn(f"could not set utilization {key}={value}: {exc.message}")
            return
    rsctmp.remember(KIND, rsc, text)
    log.info(f"utilization of {rsc} set: {text}")


def forget(rsc: str) -> None:
    rsctmp.forget(KIND, rsc)


def apply(p, xml: str, until: float) -> None:
    """The agent's step after a start or an incoming migration: cpu / hv_memory of resource
    OCF_RESOURCE_INSTANCE from the definition, as its parameters ask."""
    rsc = os.environ.get("OCF_RESOURCE_INSTANCE")
    if rsc and (p.autoset_utilization_cpu or p.autoset_utilization_hv_memory):
        update(rsc, xml, cpu=p.autoset_utilization_cpu, hv_memory=p.autoset_utilization_hv_memory,
               until=min(until, time.monotonic() + 10))


def forget_here() -> None:
    """The agent's step when the domain leaves this node (stop, migrate_to)."""
    rsc = os.environ.get("OCF_RESOURCE_INSTANCE")
    if rsc:
        forget(rsc)
