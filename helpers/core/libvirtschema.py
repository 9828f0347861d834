"""libvirt's own schema of a domain, as libvirt validates one (libxml2's RELAX NG over the
schema files libvirt installs): what libvirt would refuse with validation on is never judged
by the device policy, nor signed, nor started (the agent starts with validation on too).
"""

import os

SCHEMA = "/usr/share/libvirt/schemas/domain.rng"

_compiled: dict = {}


def problems(root, schema: str = SCHEMA) -> list:
    """Why libvirt's schema refuses the domain `root` (empty when it validates)."""
    from lxml import etree

    rng = _compiled.get(schema)
    if rng is None:
        if not os.path.exists(schema):
            return [f"libvirt's domain schema {schema} is not on this node (libvirt0 installs it): the "
                    "definition cannot be judged as libvirt reads it"]
        rng = _compiled[schema] = etree.RelaxNG(etree.parse(schema))
    if rng.validate(root):
        return []
    said = [e.message for e in rng.error_log if e.message][:3]
    return ["libvirt's domain schema refuses it: " + "; ".join(said or ["invalid"])]
