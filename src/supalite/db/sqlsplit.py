"""Split a SQL script into statements, as psql and the Supabase CLI do, keeping line numbers.

Understands what can hide a `;`: quoted strings ('…', E'…' with backslashes, "…"), dollar
quotes ($$…$$, $tag$…$tag$), line comments and nested block comments.  BEGIN ATOMIC function
bodies (SQL-standard functions) are kept whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_ATOMIC = re.compile(r"\bbegin\s+atomic\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Statement:
    sql: str
    line: int  # 1-based line of the statement's first non-blank character


def split_sql(text: str) -> list[Statement]:
    out: list[Statement] = []
    i, n = 0, len(text)
    start = 0
    atomic_depth = 0  # inside BEGIN ATOMIC … END, `;` does not end the statement

    def flush(end: int) -> None:
        chunk = text[start:end]
        if _only_comments(chunk):
            return
        lead = len(chunk) - len(chunk.lstrip())
        line = text.count("\n", 0, start + lead) + 1
        out.append(Statement(chunk.strip(), line))

    while i < n:
        c = text[i]
        if c == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
        elif c == "/" and text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "'":
            backslash = i > 0 and text[i - 1] in "eE" and (i < 2 or not text[i - 2].isalnum())
            i += 1
            while i < n:
                if backslash and text[i] == "\\":
                    i += 2
                elif text[i] == "'":
                    if text.startswith("''", i):
                        i += 2
                    else:
                        i += 1
                        break
                else:
                    i += 1
        elif c == '"':
            j = i + 1
            while True:
                j = text.find('"', j)
                if j < 0 or not text.startswith('""', j):
                    break
                j += 2
            i = n if j < 0 else j + 1
        elif c == "$" and (m := _DOLLAR.match(text, i)) and not (i and _is_ident(text[i - 1])):
            tag = m.group(0)
            j = text.find(tag, m.end())
            i = n if j < 0 else j + len(tag)
        elif c == ";" and not atomic_depth:
            flush(i + 1)
            i += 1
            start = i
        elif c.isalpha() or c == "_":
            m = _WORD.match(text, i)
            assert m is not None
            word = m.group(0).lower()
            if (word == "begin" and _ATOMIC.match(text, i)) or (word in ("case",) and atomic_depth):
                atomic_depth += 1
            elif word == "end" and atomic_depth:
                atomic_depth -= 1
            i = m.end()
        else:
            i += 1
    if start < n:
        flush(n)
    return out


def _is_ident(c: str) -> bool:
    return c.isalnum() or c == "_"


def _only_comments(chunk: str) -> bool:
    s = re.sub(r"--[^\n]*", "", chunk)
    s = re.sub(r"/\*.*?\*/", "", s, flags=re.DOTALL)
    return not s.strip().strip(";").strip()
