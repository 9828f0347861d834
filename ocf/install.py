"""Installing the agents where Pacemaker looks for them: ocf:rbdvm:VirtualDomain in the
OCF provider's directory, the fence agent fence_rbdvm and its self-check in /usr/sbin (the
only place pacemaker-fenced looks).

Pacemaker runs the agent as root for actions, but tools run `meta-data` as any user
(ocf-tester, pcs as hacluster). So the installed agent depends on nothing in the place rbdvm
was installed from (a checkout or a virtualenv can sit in a directory only its owner may
enter): `install` copies the agent's code (rbdvm.ocf and rbdvm.helpers, pure Python) into a
root-owned library directory, points the script at the system interpreter that the venv
was made from (where the Ceph, libvirt and lxml bindings live), checks that every one of
those paths is readable by every user, runs the new agent's meta-data as an unprivileged
user, and only then puts it in place. A check that fails leaves the previous agent as it
was and says which path is the problem.

The script starts Python without `site` (-S) and puts exactly the paths it needs: the
finders and .pth scanning cost more than half a monitor's time otherwise.
"""

import compileall
import contextlib
import fcntl
import hashlib
import importlib
import importlib.util
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass

from rbdvm.helpers.core import defaults, devpolicy, timeouts
from rbdvm.helpers.core.errors import Conflict, RbdvmError

DEFAULT_DIR = "/usr/lib/ocf/resource.d/rbdvm"
DEFAULT_LIB_DIR = "/usr/lib/ocf/lib/rbdvm"
# pacemaker-fenced looks for fence agents only here
DEFAULT_FENCE_DIR = "/usr/sbin"
# the alert agent: where the CIB's alert that rbdvm declares names it
DEFAULT_ALERT_DIR = os.path.dirname(defaults.ALERT_AGENT)
AGENT = "VirtualDomain"
# the packages the agent imports (rbdvm.cli is click's, never the agent's)
PACKAGES = ("ocf", "helpers")
# modules the agent needs from the system's site-packages
BINDINGS = ("rados", "rbd", "libvirt", "lxml")
# who runs meta-data in the check: an account every Debian system has
UNPRIVILEGED = ("nobody", "nogroup")


@dataclass(frozen=True)
class Program:
    name: str
    place: str            # "agent" (the OCF provider's directory) or "fence" (fenced's)
    module: str
    check: tuple          # arguments any user may run, and what their output holds
    expect: str
    what: str


PROGRAMS = (
    Program(AGENT, "agent", "rbdvm.ocf.agent", ("meta-data",), "<resource-agent",
            "ocf:rbdvm:VirtualDomain"),
    Program("fence_rbdvm", "fence", "rbdvm.ocf.fence_rbdvm", ("-o", "metadata"), "<resource-agent",
            "stonith:fence_rbdvm"),
    Program("fence_rbdvm_check", "fence", "rbdvm.ocf.fencecheck", ("--help",), "fence_rbdvm_check",
            "the storage-fencing self-check"),
    Program("alert_rbdvm", "alert", "rbdvm.ocf.alert", ("--help",), "alert_rbdvm",
            "Pacemaker's alert agent of rbdvm (the event history)"),
)


# systemd: Pacemaker stops (moving its VMs away) before the hypervisor and the guests' slice
SYSTEMD_RUNNING = "/run/systemd/system"        # exists only when systemd is PID 1
DROPIN = "/etc/systemd/system/pacemaker.service.d/50-rbdvm.conf"
# units that must still run while Pacemaker stops: started before it, so stopped after it
HYPERVISOR_UNITS = ("libvirtd.service", "virtqemud.service", "virtlogd.service", "virtlockd.service",
                    "libvirt-guests.service", "machine.slice")


BY_INSTALL_AGENT = "`rbdvm install-agent`"
BY_PACKAGE = "the rbdvm package"


def dropin_text(by: str = BY_INSTALL_AGENT) -> str:
    """pacemaker.service's drop-in: ordered after the hypervisor's units, so that at shutdown
    systemd stops Pacemaker (which moves or stops the VMs cleanly) before them (units that do
    not exist are ignored by After=)."""
    return (f"# from {by}: at shutdown Pacemaker stops, moving its VMs\n"
            "# away, before libvirt and the guests' machine slice are stopped\n"
            "[Unit]\n"
            f"After={' '.join(HYPERVISOR_UNITS)}\n")


def exporter_unit_text() -> str:
    """`rbdvm exporter` as a service on this node's loopback (shipped, not enabled: a site
    that scrapes from elsewhere sets --listen in a drop-in). It reads Ceph with the node's
    rbdvm key and Pacemaker's status, and writes nothing."""
    return ("[Unit]\n"
            "Description=rbdvm's metrics for Prometheus (rbdvm exporter)\n"
            "Documentation=man:rbdvm-exporter(1)\n"
            "After=network-online.target pacemaker.service\n"
            "[Service]\n"
            f"ExecStart=/usr/bin/rbdvm exporter --listen {defaults.EXPORTER_LISTEN}\n"
            "Restart=always\n"
            "RestartSec=5\n"
            "NoNewPrivileges=yes\n"
            "CapabilityBoundingSet=CAP_DAC_READ_SEARCH\n"
            "ProtectSystem=strict\n"
            "ProtectHome=yes\n"
            "PrivateTmp=yes\n"
            "PrivateDevices=yes\n"
            "ProtectKernelTunables=yes\n"
            "ProtectKernelModules=yes\n"
            "ProtectControlGroups=yes\n"
            "RestrictNamespaces=yes\n"
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n"
            "SystemCallArchitectures=native\n"
            "[Install]\n"
            "WantedBy=multi-user.target\n")


def selfcheck_unit_text(sbin: str = DEFAULT_FENCE_DIR) -> str:
    """fence_rbdvm_check as a service: started before Pacemaker, restarted whenever it ends,
    never given up on (shipped, not enabled: only sites that storage-fence need it). Confined
    to what it does: read Ceph and /proc, and kill QEMUs of any user."""
    return ("[Unit]\n"
            "Description=End this node's VMs when Ceph has fenced it (fence_rbdvm)\n"
            "Documentation=man:fence_rbdvm_check(8) man:fence_rbdvm(8)\n"
            "Before=pacemaker.service\n"
            "# a node without its self-check is unguarded: restart it for ever, never give up\n"
            "StartLimitIntervalSec=0\n"
            "[Service]\n"
            f"ExecStart={sbin}/fence_rbdvm_check --interval {timeouts.FENCE_CHECK_INTERVAL:g}\n"
            "Restart=always\n"
            "RestartSec=1\n"
            "# under memory pressure the kernel ends anything else first\n"
            "OOMScoreAdjust=-900\n"
            "# kill QEMUs of any user (CAP_KILL), see which network namespace a QEMU is in\n"
            "# (CAP_SYS_PTRACE), read libvirt's PID files; no other privilege. Nothing here may hide\n"
            "# other processes (ProtectProc, PrivatePIDs, PrivateUsers) or cut Ceph off (PrivateNetwork)\n"
            "CapabilityBoundingSet=CAP_KILL CAP_SYS_PTRACE CAP_DAC_READ_SEARCH\n"
            "NoNewPrivileges=yes\n"
            "ProtectSystem=strict\n"
            "# the QEMUs it ends while fenced are kept there for the event history\n"
            "StateDirectory=rbdvm\n"
            "ProtectHome=yes\n"
            "PrivateTmp=yes\n"
            "PrivateDevices=yes\n"
            "ProtectKernelTunables=yes\n"
            "ProtectKernelModules=yes\n"
            "ProtectKernelLogs=yes\n"
            "ProtectControlGroups=yes\n"
            "ProtectClock=yes\n"
            "ProtectHostname=yes\n"
            "RestrictNamespaces=yes\n"
            "RestrictRealtime=yes\n"
            "RestrictSUIDSGID=yes\n"
            "LockPersonality=yes\n"
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n"
            "SystemCallArchitectures=native\n"
            "[Install]\n"
            "WantedBy=multi-user.target\n")


def install_dropin(path: str = DROPIN, running: str = SYSTEMD_RUNNING) -> str | None:
    """Write the drop-in and reload systemd where systemd runs; None where it does not."""
    if not os.path.isdir(running):
        return None
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    text = dropin_text()
    try:
        with open(path) as f:
            if f.read() == text:
                return path
    except FileNotFoundError:
        pass
    with open(path + ".new", "w") as f:
        f.write(text)
    os.replace(path + ".new", path)
    try:
        subprocess.run(["systemctl", "daemon-reload"], check=False, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        pass   # systemd reads it at the next reload or boot
    return path


class InstallError(RbdvmError):
    """The agent cannot be installed so that it works for every user."""


def install(directory: str = DEFAULT_DIR, lib_dir: str = DEFAULT_LIB_DIR,
            fence_dir: str = DEFAULT_FENCE_DIR, alert_dir: str = DEFAULT_ALERT_DIR) -> dict:
    """Copy the agents' code, write the resource agent, the fence agent and its self-check,
    check each works for any user; return {program: path}. Nothing is replaced unless every
    program passed its check."""
    interpreter = os.path.realpath(sys.executable)
    paths = _binding_paths()
    targets = _targets(directory, fence_dir, alert_dir)
    _refuse_packaged(targets.values())
    for d in (directory, fence_dir, alert_dir, lib_dir):
        os.makedirs(d, mode=0o755, exist_ok=True)
    _check_readable_by_all([interpreter], executable=True)
    _check_readable_by_all([directory, fence_dir, alert_dir, lib_dir, *paths])
    with _one_install_at_a_time(lib_dir):
        return _install(interpreter, paths, targets, lib_dir)


def _refuse_packaged(paths) -> None:
    """The package's agents are dpkg's files: overwritten, they would no longer be what dpkg
    verifies, and the next upgrade would overwrite the copy made here in turn."""
    for path in paths:
        try:
            with open(path) as f:
                head = f.read(512)
        except OSError:
            continue
        if f"written by {BY_PACKAGE}" in head:
            raise Conflict(f"the agents on this node are the rbdvm package's ({path})",
                           "installing them from here would overwrite files dpkg owns",
                           "Upgrade the rbdvm package instead, or remove it first to install from here",
                           code="AGENT_PACKAGED", details={"path": path})


@contextlib.contextmanager
def _one_install_at_a_time(lib_dir: str):
    """Installs run at once (two operators, a playbook and the package's hook) take turns: one
    would otherwise replace the other's .new scripts, or prune the copy it is making. The
    lock is on the library directory itself, so nothing is added to it."""
    fd = os.open(lib_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _install(interpreter: str, paths: list, targets: dict, lib_dir: str) -> dict:
    code = _copy_code(lib_dir)
    written = {}
    try:
        for program in PROGRAMS:
            path = targets[program.name]
            written[path] = path + ".new"
            _write_checked(written[path], script(interpreter, code, paths, program), program)
    except InstallError:
        for tmp in written.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    keep = {os.path.basename(code)} | {_code_of(path) for path in written}
    for path, tmp in written.items():
        os.replace(tmp, path)
    _prune(lib_dir, keep=keep)
    return targets


def _targets(directory: str, fence_dir: str, alert_dir: str = DEFAULT_ALERT_DIR) -> dict:
    """{program: the path it is installed at}: the agent in the OCF provider's directory, the
    fence agent and its self-check where pacemaker-fenced looks, the alert agent where the
    CIB's alert names it."""
    places = {"agent": directory, "fence": fence_dir, "alert": alert_dir}
    return {p.name: os.path.join(places[p.place], p.name) for p in PROGRAMS}


def script(interpreter: str, code: str, paths: list, program: Program = PROGRAMS[0],
           by: str = BY_INSTALL_AGENT, switched: bool = False) -> str:
    """The program's script: Python without `site`, exactly the paths it needs. `code` holds
    rbdvm/{ocf,helpers}; `switched`: it is a link an upgrade switches in one step, read once
    when the program starts, so an action runs one version whole whatever happens meanwhile."""
    how = ("run it again after\n# upgrading rbdvm. The code is {module}, copied to the directory below.\n"
           if by == BY_INSTALL_AGENT else
           "upgraded with it.\n# The code is {module}, in the copy the link below points to when it starts.\n")
    where = (f"import os\ncode = os.path.realpath({code!r})\n" if switched else f"code = {code!r}\n")
    return (f"#!{interpreter} -S\n"
            f"# {program.what}, written by {by}: " + how.format(module=program.module) +
            "import sys\n" + where +
            f"sys.path[1:1] = [code, *{paths!r}]\n"
            "import types\n"
            "rbdvm = sys.modules['rbdvm'] = types.ModuleType('rbdvm')\n"
            "rbdvm.__path__ = [code + '/rbdvm']\n"
            f"from {program.module} import main\n"
            "sys.exit(main())\n")


def _binding_paths() -> list:
    """The site-packages directories holding the bindings, in sys.path's order."""
    found = set()
    for module in BINDINGS:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise InstallError(f"the Python module {module} cannot be found by {sys.executable}",
                               "the agent needs it", "Install Debian's python3-" + module)
        location = spec.origin
        for _ in module.split("."):
            location = os.path.dirname(location)
        if os.path.basename(spec.origin) == "__init__.py":
            location = os.path.dirname(location)
        found.add(os.path.realpath(location))
    return [p for p in dict.fromkeys(os.path.realpath(p) for p in sys.path if p) if p in found]


def _copy_code(lib_dir: str) -> str:
    """lib_dir/<digest>/rbdvm/{ocf,helpers}: one directory per version of the code, made
    complete under a temporary name and then renamed, so an agent never sees half a copy."""
    files = []
    for package in PACKAGES:
        root = os.path.realpath(importlib.import_module(f"rbdvm.{package}").__path__[0])
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            files += [(package, os.path.relpath(os.path.join(dirpath, n), root), os.path.join(dirpath, n))
                      for n in sorted(filenames) if n.endswith(".py")]
    digest = hashlib.sha256()
    for package, name, path in files:
        with open(path, "rb") as f:
            digest.update(f"{package}/{name}\0".encode() + f.read() + b"\0")
    target = os.path.join(lib_dir, digest.hexdigest()[:16])
    if os.path.isdir(target):
        return target
    tmp = target + f".tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    for package, name, path in files:
        dest = os.path.join(tmp, "rbdvm", package, name)
        os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
        shutil.copyfile(path, dest)
    # compiled now, by root: the agent never writes into its own code
    compileall.compile_dir(tmp, quiet=1)
    for dirpath, _dirs, filenames in os.walk(tmp):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    os.rename(tmp, target)
    return target


def _check_readable_by_all(paths: list, executable: bool = False) -> None:
    """Every directory on the way must be searchable by others, the path itself readable
    (and executable for the interpreter) by others."""
    for path in paths:
        parts = path.split(os.sep)
        for i in range(2, len(parts)):
            parent = os.sep.join(parts[:i]) or os.sep
            mode = os.stat(parent).st_mode
            if not mode & stat.S_IXOTH:
                raise InstallError(
                    f"the agent needs {path}, inside {parent}",
                    f"{parent} has mode {stat.filemode(mode)}: users other than its owner cannot "
                    "enter it, and Pacemaker's tools run the agent's meta-data as any user",
                    f"Use a place every user may enter, or chmod o+x {parent}")
        mode = os.stat(path).st_mode
        wanted = stat.S_IROTH | (stat.S_IXOTH if executable or stat.S_ISDIR(mode) else 0)
        if mode & wanted != wanted:
            raise InstallError(f"the agent needs {path}",
                               f"its mode is {stat.filemode(mode)}: other users cannot use it",
                               "Make it readable by every user")


def _write_checked(path: str, text: str, program: Program) -> None:
    """`text` as the executable script `path`, then run what any user may run of it."""
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)
    _check_runs(path, program)


def _check_runs(agent: str, program: Program) -> None:
    """Run what any user may run (meta-data) the way a tool that is not root would."""
    root = os.geteuid() == 0
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf", "LANG": "C.UTF-8"}
    try:
        res = subprocess.run([agent, *program.check], capture_output=True, text=True, timeout=30,
                             env=env, cwd="/", user=UNPRIVILEGED[0] if root else None,
                             group=UNPRIVILEGED[1] if root else None, extra_groups=[] if root else None)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"the new {program.name} did not run", str(exc)) from None
    if res.returncode != 0 or program.expect not in res.stdout:
        who = f"user {UNPRIVILEGED[0]}" if root else "this user"
        raise InstallError(f"the new {program.name} {' '.join(program.check)} failed as {who} (exit {res.returncode})",
                           (res.stderr.strip() or res.stdout.strip())[-500:])


def _code_of(agent: str) -> str:
    """The code directory the agent being replaced used (kept: it may be running)."""
    try:
        with open(agent) as f:
            for line in f:
                if line.startswith("code = '"):
                    return os.path.basename(line.split("'")[1])
                if line.startswith("rbdvm.__path__ = ['"):    # a script of an older rbdvm
                    return os.path.basename(os.path.dirname(line.split("'")[1]))
    except OSError:
        pass
    return ""


def _prune(lib_dir: str, keep: set) -> None:
    """Remove code directories no agent uses any more (the current one and the one before
    it are kept: an agent started before the replace may still import from it)."""
    for name in os.listdir(lib_dir):
        if name not in keep and not name.startswith("."):
            path = os.path.join(lib_dir, name)
            if os.path.islink(path):
                os.unlink(path)
            else:
                shutil.rmtree(path, ignore_errors=True)


# The Debian package's layout: Debian's interpreter, the code where dh-python puts it, and
# the agents' own copies of it, one per version, the one in use behind a link
PACKAGED_PYTHON = "/usr/bin/python3"
PACKAGED_SITE = "/usr/lib/python3/dist-packages"
PACKAGED_UNITS = "/lib/systemd/system"
PACKAGED_CODE_DIR = "/usr/lib/rbdvm/agent-code"
CURRENT = "current"


def switch_packaged(code_dir: str = PACKAGED_CODE_DIR, site: str = PACKAGED_SITE) -> str:
    """The package's configure step (its postinst). dpkg replaces the files of the Python
    package in place, so an agent that imported from them during an unpack could load old and
    new modules together. The agents import from a copy instead: made here, once dpkg has
    unpacked everything, checked to run for any user, then switched to by one rename of the
    link the agents read once as they start. The copy before stays (an action started before
    the switch may still import from it); older ones go. Returns the copy in use."""
    os.makedirs(code_dir, mode=0o755, exist_ok=True)
    with _one_install_at_a_time(code_dir):
        code = _copy_code(code_dir)
        for program in PROGRAMS:
            check = os.path.join(code_dir, f".check-{program.name}")
            try:
                _write_checked(check, script(PACKAGED_PYTHON, code, [site], program, BY_PACKAGE), program)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(check)
        link = os.path.join(code_dir, CURRENT)
        previous = os.path.basename(os.path.realpath(link)) if os.path.islink(link) else ""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link + ".new")
        os.symlink(os.path.basename(code), link + ".new")
        os.replace(link + ".new", link)
        _prune(code_dir, keep={os.path.basename(code), previous, CURRENT})
    return code


def packaged_files() -> dict:
    """{absolute path: (text, mode)}: what the Debian package installs besides the Python
    package, built from the same declarations as `install` (the agents run from the packaged
    code on Debian's python3; the systemd files are shipped, the self-check is not enabled)."""
    paths = _targets(DEFAULT_DIR, DEFAULT_FENCE_DIR, DEFAULT_ALERT_DIR)
    link = os.path.join(PACKAGED_CODE_DIR, CURRENT)
    files = {paths[p.name]: (script(PACKAGED_PYTHON, link, [PACKAGED_SITE], p, BY_PACKAGE, switched=True), 0o755)
             for p in PROGRAMS}
    files[f"{PACKAGED_UNITS}/pacemaker.service.d/50-rbdvm.conf"] = (dropin_text(BY_PACKAGE), 0o644)
    files[f"{PACKAGED_UNITS}/fence_rbdvm_check.service"] = (selfcheck_unit_text(), 0o644)
    files[f"{PACKAGED_UNITS}/rbdvm-exporter.service"] = (exporter_unit_text(), 0o644)
    files[devpolicy.POLICY_FILE] = (devpolicy.default_text(), 0o644)
    return files


if __name__ == "__main__":
    # the package's postinst: /usr/bin/python3 -P -m rbdvm.ocf.install switch-packaged
    if sys.argv[1:] != ["switch-packaged"]:
        sys.exit("usage: python3 -m rbdvm.ocf.install switch-packaged")
    try:
        print(f"rbdvm: the agents now run the code in {switch_packaged()}")
    except RbdvmError as exc:
        sys.exit(f"rbdvm: the agents' code was not switched: {exc.message}")
