"""The one way rbdvm parses XML it did not write: domain definitions from operators, files
and Ceph; crm_mon's and cibadmin's output; the agent's config= file.

lxml with entity resolution, DTD loading and network access off and no huge trees, a new
parser per document (an lxml parser keeps state between documents), and no DOCTYPE
accepted at all: libvirt and Pacemaker need none, and a DOCTYPE is where entity tricks live.
"""

from lxml import etree

from .errors import RbdvmError, UsageError


def parse(data: str | bytes, source: str, error: type[RbdvmError] = UsageError, fix: str = "") -> etree._Element:
    """The document's root element; `error` (naming `source`) if it is not well-formed
    XML or carries a DOCTYPE."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_blank_text=True)
    try:
        root = etree.fromstring(data.encode() if isinstance(data, str) else data, parser)
    except etree.XMLSyntaxError as exc:
        raise error(f"{source} is not valid XML", str(exc), fix) from None
    if root.getroottree().docinfo.doctype:
        raise error(f"{source} has a DOCTYPE", "rbdvm accepts no document type declarations "
                    "(where entities from outside would come from)", "Remove the <!DOCTYPE ...> line")
    return root


def parse_file(path: str, source: str, error: type[RbdvmError] = UsageError) -> etree._Element:
    """A file, read whole first (never handed to the parser by name: no URL, no include)."""
    with open(path, "rb") as f:
        return parse(f.read(), source, error)
