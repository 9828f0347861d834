"""What the agent remembers on this node between actions: small files in $HA_RSCTMP (a
tmpfs that a reboot empties, like the domains running here). Standard library only."""

import hashlib
import os


def _path(kind: str, key: str) -> str:
    base = os.environ.get("HA_RSCTMP") or "/run/resource-agents"
    # keys are resource names or file paths: hashed, so any value makes one safe file name
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return os.path.join(base, f"rbdvm-VirtualDomain-{kind}-{digest}")


def recall(kind: str, key: str):
    try:
        with open(_path(kind, key)) as f:
            return f.read()
    except OSError:
        return None


def remember(kind: str, key: str, text: str) -> bool:
    path = _path(kind, key)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
        return True
    except OSError:
        return False


def forget(kind: str, key: str) -> None:
    try:
        os.unlink(_path(kind, key))
    except OSError:
        pass
