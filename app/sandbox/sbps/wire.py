"""The API type's wire format, read and written here on purpose (the simulator checks the wire
on its own, never with the client's codec): Shift_JIS XML parsed by expat with every DTD and
entity declaration refused (no external fetches, no entity expansion), answers written by hand,
and `sps_hashcode`."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn
from xml.parsers import expat

ENCODING = "shift_jis"
MEDIA_TYPE = "text/xml;charset=Shift_JIS"
MAX_BODY_BYTES = 64 * 1024
# Values may not hold these (the spec's XML rules); inter-element whitespace in blocks may.
FORBIDDEN_IN_VALUE = ("\t", "\r", "\n")

_DECLARATION = re.compile(rb"\A\s*<\?xml\s[^?]*\?>")
_ENCODING_ATTR = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9_.-]+)["']""")


class WireError(ValueError):
    """The body is no readable request: not XML, not Shift_JIS, a DTD, mixed content..."""


@dataclass
class Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    text: str = ""
    children: list[Node] = field(default_factory=list)

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def find(self, path: str) -> Node | None:
        """The first node at `a/b/c` below this one."""
        node: Node | None = self
        for part in path.split("/"):
            node = next((c for c in node.children if c.tag == part), None) if node else None
        return node

    def leaves(self, prefix: str = "") -> Iterator[tuple[str, Node]]:
        """Every leaf below this node in document order, with its path ("a/b")."""
        for child in self.children:
            path = f"{prefix}{child.tag}"
            if child.is_leaf:
                yield path, child
            else:
                yield from child.leaves(f"{path}/")


def _refuse(*_: Any) -> NoReturn:
    raise WireError("DTDs and entity declarations are refused")


def decode_body(body: bytes) -> str:
    """The document as text without its declaration, which must say Shift_JIS if present."""
    if len(body) > MAX_BODY_BYTES:
        raise WireError("body too large")
    rest = body
    match = _DECLARATION.match(body)
    if match:
        enc = _ENCODING_ATTR.search(match.group(0))
        if enc and enc.group(1).decode("ascii").lower().replace("-", "_") != ENCODING:
            raise WireError("the declaration names another encoding than Shift_JIS")
        rest = body[match.end() :]
    try:
        return rest.decode(ENCODING)
    except UnicodeDecodeError as exc:
        raise WireError("not Shift_JIS") from exc


def parse(body: bytes) -> Node:
    """The element tree of a request body. Text of blocks must be whitespace only."""
    text = decode_body(body)
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    root = Node("")
    stack = [root]

    def start(tag: str, attrs: dict[str, str]) -> None:
        node = Node(tag, dict(attrs))
        stack[-1].children.append(node)
        stack.append(node)

    def end(_tag: str) -> None:
        node = stack.pop()
        if node.children and node.text.strip():
            raise WireError(f"<{node.tag}> mixes text and elements")
        if node.children:
            node.text = ""

    def chars(data: str) -> None:
        stack[-1].text += data

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        raise WireError(f"not well-formed XML: {exc}") from exc
    if len(root.children) != 1:
        raise WireError("no single root element")
    return root.children[0]


def sps_hashcode(values: Iterable[str], hash_key: str) -> str:
    """SHA-1 hex of every value (stripped) in document order, then the hash key, as Shift_JIS."""
    joined = "".join(v.strip() for v in values) + hash_key
    return hashlib.sha1(joined.encode(ENCODING)).hexdigest()


# What an answer is made of: ("tag", "value") leaves and ("tag", [children]) blocks.
Item = tuple[str, str | Sequence["Item"]]

_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))


def _escape(value: str) -> str:
    for raw, ref in _ESCAPES:
        value = value.replace(raw, ref)
    return value


def _write(items: Sequence[Item], out: list[str]) -> None:
    for tag, value in items:
        if isinstance(value, str):
            # Empty elements come back as <tag/>, as the real service answers them.
            out.append(f"<{tag}>{_escape(value)}</{tag}>" if value else f"<{tag}/>")
        else:
            out.append(f"<{tag}>")
            _write(value, out)
            out.append(f"</{tag}>")


def render(root: str, items: Sequence[Item], *, id_: str | None = None) -> bytes:
    """A whole document: the declaration, then `<root id="...">` (no id: NG answers)."""
    out = ['<?xml version="1.0" encoding="Shift_JIS"?>\n']
    out.append(f'<{root} id="{_escape(id_)}">' if id_ else f"<{root}>")
    _write(items, out)
    out.append(f"</{root}>")
    return "".join(out).encode(ENCODING)
