"""Installing the agent where Pacemaker looks for it.

The agent is a small script whose interpreter is this very Python (the one that has rbdvm,
libvirt and the Ceph bindings). It starts Python without `site` (-S) and puts exactly the
paths site would have given it: the editable-install finder and .pth scanning cost more than
half a monitor's time otherwise.
"""

import os
import site
import sys

import rbdvm.ocf

DEFAULT_DIR = "/usr/lib/ocf/resource.d/rbdvm"
AGENT = "VirtualDomain"


def script() -> str:
    package_parent = os.path.dirname(os.path.realpath(rbdvm.ocf.__path__[0]))
    paths = [p for p in site.getsitepackages() if os.path.isdir(p)]
    return (f"#!{sys.executable} -S\n"
            "# ocf:rbdvm:VirtualDomain, written by `rbdvm install-agent`: run it again after\n"
            "# moving or reinstalling rbdvm. The code is rbdvm.ocf.agent.\n"
            "import sys\n"
            f"sys.path[1:1] = {paths!r}\n"
            "import types\n"
            "rbdvm = sys.modules['rbdvm'] = types.ModuleType('rbdvm')\n"
            f"rbdvm.__path__ = [{package_parent!r}]\n"
            "from rbdvm.ocf.agent import main\n"
            "sys.exit(main())\n")


def install(directory: str = DEFAULT_DIR) -> str:
    """Write the agent (atomically) and return its path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, AGENT)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(script())
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)
    return path
