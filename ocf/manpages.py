"""Man pages of the agents, derived from their declarations as resource-agents and
fence-agents derive theirs: ocf_rbdvm_VirtualDomain(7) and fence_rbdvm(8) from the meta-data
XML Pacemaker reads (so a page never says other than the agent), fence_rbdvm_check(8) from
its argument parser. Written by the Debian package's build (debian/generate)."""

from lxml import etree

from . import fence_rbdvm, fencecheck, metadata

MANUAL = {7: "OCF resource agents", 8: "System administration"}


def _text(text: str) -> str:
    """Running text as roff reads it: a backslash is printed, and no line starts a request."""
    lines = (text or "").replace("\\", "\\e").replace("-", "\\-").splitlines()
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in lines)


def _page(name: str, section: int, version: str, summary: str, parts: list) -> str:
    """The page: its title line, NAME (whole: the summary is one line, never cut), then
    (heading, roff body) parts."""
    out = [f'.TH {name.upper().replace("-", "_")} {section} "" "rbdvm {version}" "{MANUAL[section]}"',
           ".SH NAME", f"{_text(name)} \\- {_text(summary)}"]
    for heading, body in parts:
        out += [f".SH {heading}", body]
    return "\n".join(out) + "\n"


def _tagged(items) -> str:
    """(term, text) pairs as a tagged list."""
    return "\n".join(f".TP\n{term}\n{_text(text)}" for term, text in items)


def _metadata_parts(xml: str, said=None) -> tuple:
    """(shortdesc, DESCRIPTION, PARAMETERS, ACTIONS) of an agent's meta-data XML; `said`:
    {action: what it does}, where the declaration says it."""
    # the agent's own output (with the DOCTYPE ocf-tester needs), never a file from outside
    root = etree.fromstring(xml.encode(), etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    short = root.get("shortdesc") or root.findtext("shortdesc") or ""
    params = []
    for p in root.iterfind("parameters/parameter"):
        content = p.find("content")
        default = content.get("default", "") if content is not None else ""
        kind = content.get("type", "string") if content is not None else "string"
        note = "deprecated; " if p.get("deprecated") == "1" else ""
        term = f"\\fB{_text(p.get('name'))}\\fR ({note}{kind}" + (f", default \\fI{_text(default)}\\fR)" if default
                                                                  else ")")
        params.append((term, p.findtext("longdesc") or p.findtext("shortdesc") or ""))
    actions = []
    for a in root.iterfind("actions/action"):
        facts = [f"{k} {a.get(k)}" for k in ("timeout", "interval", "depth") if a.get(k)]
        what = (said or {}).get(a.get("name"))
        actions.append((f"\\fB{_text(a.get('name'))}\\fR", "; ".join(filter(None, [what, ", ".join(facts)]))))
    return short, _text(root.findtext("longdesc") or ""), _tagged(params), _tagged(actions)


def resource_agent(version: str) -> tuple:
    """("ocf_rbdvm_VirtualDomain.7", text)."""
    short, description, params, actions = _metadata_parts(metadata.metadata_xml())
    synopsis = ("\\fBpcs resource create\\fR \\fIRESOURCE\\fR \\fBocf:rbdvm:VirtualDomain\\fR vm=\\fIVM\\fR "
                "[\\fIPARAMETER\\fR=\\fIVALUE\\fR ...]\n.br\n"
                "\\fBOCF_RESKEY_vm\\fR=\\fIVM\\fR \\fB/usr/lib/ocf/resource.d/rbdvm/VirtualDomain\\fR "
                "\\fIACTION\\fR")
    see = "\\fBrbdvm\\fR(1), \\fBfence_rbdvm\\fR(8), \\fBfence_rbdvm_check\\fR(8), \\fBpcs\\fR(8)"
    return "ocf_rbdvm_VirtualDomain.7", _page(
        "ocf_rbdvm_VirtualDomain", 7, version, short,
        [("SYNOPSIS", synopsis), ("DESCRIPTION", description), ("PARAMETERS", params),
         ("ACTIONS", actions), ("SEE ALSO", see)])


def fence_agent(version: str) -> tuple:
    """("fence_rbdvm.8", text): its options as pacemaker-fenced passes them (name=value
    lines on stdin) and as a person types them."""
    short, description, _params, actions = _metadata_parts(fence_rbdvm.metadata_xml(), fence_rbdvm.ACTIONS)
    options = []
    for o in fence_rbdvm.OPTIONS:
        flags = ", ".join(f"\\fB{_text(f)}\\fR" for f in o.flags)
        names = ", ".join((o.name, *o.aliases))
        default = f" Default: {o.default}." if o.default else ""
        options.append((f"{flags} \\fIVALUE\\fR (stdin: {_text(names)})", o.short + "." + default))
    synopsis = ("\\fBfence_rbdvm\\fR [\\fIOPTION\\fR ...]\n.br\n"
                "\\fBfence_rbdvm\\fR < \\fIname=value lines\\fR (as pacemaker\\-fenced runs it)")
    exits = _tagged([("0", "success (status: the node is on)"), ("1", "failure"),
                     ("2", "status: the node is off (fenced)")])
    see = "\\fBfence_rbdvm_check\\fR(8), \\fBocf_rbdvm_VirtualDomain\\fR(7), \\fBrbdvm\\fR(1), \\fBstonith_admin\\fR(8)"
    return "fence_rbdvm.8", _page(
        "fence_rbdvm", 8, version, short,
        [("SYNOPSIS", synopsis), ("DESCRIPTION", description), ("OPTIONS", _tagged(options)),
         ("ACTIONS", actions), ("EXIT STATUS", exits), ("SEE ALSO", see)])


def self_check(version: str) -> tuple:
    """("fence_rbdvm_check.8", text), from the parser the program itself uses."""
    parser = fencecheck.parser()
    options = []
    for action in parser._actions:      # argparse keeps no public list of its arguments
        if not action.option_strings or action.dest == "help":
            continue
        flags = ", ".join(f"\\fB{_text(f)}\\fR" for f in action.option_strings)
        default = f" Default: {action.default}." if action.default not in (None, "") else ""
        value = action.metavar or action.dest.upper()
        options.append((f"{flags} \\fI{value}\\fR", (action.help or "") + "." + default))
    description = _text(fencecheck.__doc__.split("\n", 2)[2].strip()).replace("\n\n", "\n.PP\n")
    exits = _tagged([("0", "not fenced, or Ceph did not answer (nothing can be said)"),
                     ("1", "fenced: this node's QEMUs with an RBD disk were ended")])
    see = ("\\fBfence_rbdvm\\fR(8), \\fBocf_rbdvm_VirtualDomain\\fR(7), \\fBrbdvm\\fR(1); "
           "the unit \\fBfence_rbdvm_check.service\\fR")
    return "fence_rbdvm_check.8", _page(
        "fence_rbdvm_check", 8, version, (parser.description or "").rstrip("."),
        [("SYNOPSIS", "\\fBfence_rbdvm_check\\fR [\\fIOPTION\\fR ...]"), ("DESCRIPTION", description),
         ("OPTIONS", _tagged(options)), ("EXIT STATUS", exits), ("SEE ALSO", see)])


def pages(version: str) -> dict:
    """{file name: roff text} of every agent's page."""
    return dict(make(version) for make in (resource_agent, fence_agent, self_check))

