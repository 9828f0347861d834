"""The agent's meta-data XML, built from the declaration in ocf/params.py."""

import sys

from lxml import etree

from .params import ACTIONS, PARAMS

LONGDESC = (
    "Manages a libvirt/QEMU virtual machine whose disks are Ceph RBD images, as a drop-in "
    "successor of ocf:heartbeat:VirtualDomain. With vm=NAME the domain definition is read from "
    "Ceph (the VM made by `rbdvm create`), so no node needs a local XML file; config=FILE works "
    "as with VirtualDomain. Domains are transient: nothing stays defined on a node. Start refuses "
    "to run a second writer: while any RBD disk of the VM is open by another client (a split "
    "brain, or a crashed node not fenced yet), it waits for that client to go and fails if it "
    "does not; the client of a node the cluster has fenced (and not seen since) is blocklisted "
    "in Ceph at once. Monitor needs neither Ceph nor a running libvirtd (it falls back to the process "
    "table). Live migration goes through the libvirt API with speed, downtime and auto-converge, "
    "and is aborted before its timeout so the VM keeps running on the source."
)


def _bool_text(v) -> str:
    return "true" if v else "false"


def metadata_xml() -> str:
    root = etree.Element("resource-agent", name="VirtualDomain", version="1.0")
    etree.SubElement(root, "version").text = "1.1"
    etree.SubElement(root, "longdesc", lang="en").text = LONGDESC
    etree.SubElement(root, "shortdesc", lang="en").text = \
        "Virtual machine on Ceph RBD (libvirt/QEMU), definition read from Ceph"
    params = etree.SubElement(root, "parameters")
    for p in PARAMS:
        el = etree.SubElement(params, "parameter", name=p.name, unique="1" if p.unique else "0",
                              required="0")
        etree.SubElement(el, "longdesc", lang="en").text = p.long or p.short
        etree.SubElement(el, "shortdesc", lang="en").text = p.short
        default = _bool_text(p.default) if p.kind == "boolean" else str(p.default)
        etree.SubElement(el, "content", type=p.kind, default=default)
    actions = etree.SubElement(root, "actions")
    for a in ACTIONS:
        attrs = {"name": a.name, "timeout": f"{a.timeout}s"}
        if a.interval is not None:
            attrs["interval"] = f"{a.interval}s"
        if a.depth is not None:
            attrs["depth"] = str(a.depth)
        etree.SubElement(actions, "action", **attrs)
    # ocf-tester validates against ra-api-1.dtd, which it finds through this DOCTYPE
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8",
                          doctype='<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">').decode()


def action(_p=None) -> int:
    """meta-data: the XML on stdout (any user may run it)."""
    sys.stdout.write(metadata_xml())
    return 0
