"""Reading PostgreSQL's node trees as text (`pg_rewrite.ev_action`, `pg_node_tree`).

A view's stored query says, for each of its output columns, which table column it passes
through unchanged (`TARGETENTRY :resorigtbl :resorigcol`).  That is how the Data API embeds
through views as PostgREST does: a view that exposes a foreign key's columns takes part in the
relationship.  The text format is the one `nodeToString` writes and `pg_strtok` reads:
`{NAME :field value ...}` for nodes, `(...)` for lists, `<>` for null, whitespace and the four
brackets as delimiters, and a backslash escaping the next character.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_DELIMITERS = frozenset("(){}")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in _DELIMITERS:
            out.append(ch)
            i += 1
        else:
            buf: list[str] = []
            while i < n and not text[i].isspace() and text[i] not in _DELIMITERS:
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(text[i])
                i += 1
            out.append("".join(buf))
    return out


def parse_node_tree(text: str) -> Any:
    """The tree as Python values: a node is a dict (its type under "_node"), a list is a
    list, everything else is the token's text (None for `<>`)."""
    tokens = _tokens(text)
    pos = 0

    def value() -> Any:
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "{":
            node: dict[str, Any] = {"_node": tokens[pos]}
            pos += 1
            while tokens[pos] != "}":
                key = tokens[pos]
                pos += 1
                if key.startswith(":"):
                    if tokens[pos] == "}" or tokens[pos].startswith(":"):
                        node[key[1:]] = None  # a field written with no value
                    else:
                        node[key[1:]] = value()
            pos += 1
            return node
        if tok == "(":
            items: list[Any] = []
            while tokens[pos] != ")":
                items.append(value())
            pos += 1
            return items
        if tok == "[":  # a Const's datum bytes: `[ 1 0 0 0 ]`, kept as one string
            raw: list[str] = []
            while tokens[pos] != "]":
                raw.append(tokens[pos])
                pos += 1
            pos += 1
            return " ".join(raw)
        return None if tok == "<>" else tok

    return value()


@dataclass(frozen=True)
class PassThrough:
    """A view column that is a table column unchanged: (table oid, column number)."""

    column: str
    table_oid: int
    attnum: int


def view_pass_throughs(ev_action: str) -> list[PassThrough]:
    """The output columns of a view's query that pass a table column through unchanged."""
    tree = parse_node_tree(ev_action)
    query = tree[0] if isinstance(tree, list) and tree else tree
    if not isinstance(query, dict):
        return []
    out: list[PassThrough] = []
    for entry in query.get("targetList") or []:
        if not isinstance(entry, dict) or entry.get("resjunk") == "true":
            continue
        name, tbl, col = entry.get("resname"), entry.get("resorigtbl"), entry.get("resorigcol")
        # resorigtbl is set for any column that *comes from* a table column, even through an
        # expression on top of it only when it is a plain Var; anything computed has 0.
        if not isinstance(entry.get("expr"), dict) or entry["expr"].get("_node") != "VAR":
            continue
        if name and tbl and col and tbl != "0":
            out.append(PassThrough(name, int(tbl), int(col)))
    return out
