"""Where to attach to a running VM's serial console: the node Pacemaker runs it on, and
that node's libvirtd by the URI the VM's migration uses (core.peer), so the console works
from any node. Attaching is the front end's (an interactive terminal)."""

from ..ceph import vmstore
from ..core import names
from ..core.errors import Conflict, NotFound
from . import running
from .env import Env


def locate(env: Env, vm: str) -> dict:
    """{name, node, uri} of the running VM; VM_NOT_ENABLED or VM_NOT_RUNNING otherwise."""
    names.check_name(vm, "VM name")
    vmstore.require_complete(env.session, vm)
    where = running.running_on(env, vm)
    if where is None:
        if not env.cluster.available() or env.cluster.resource(vm) is None:
            raise NotFound(f"VM {vm} runs nowhere", "it is not enabled in the cluster, so no node runs it",
                           f"Enable it first: rbdvm enable {vm}", code="VM_NOT_ENABLED", details={"vm": vm})
        raise Conflict(f"VM {vm} runs nowhere", "the cluster has it stopped, starting or failed",
                       f"Start it (rbdvm start {vm}) or see rbdvm status {vm}", code="VM_NOT_RUNNING",
                       details={"vm": vm})
    node, uri = where
    return {"name": vm, "node": node, "uri": uri}
