"""Reads rendered once per query shape.

A read's statement depends on its query string, a few headers and the schema cache, never on
who asks (the database applies roles and RLS).  Queries that differ only in the values of plain
comparisons (`col=eq.5` and `col=eq.6`) render the same statement with those values in the same
bind parameters.  So the statement is rendered once per shape, the values marked by
placeholders, and each later request of that shape only fills its values in: no parse, plan or
render on the Data API's most common requests.

Only a value that a comparison takes as it is can be a placeholder: an `eq neq gt gte lt lte`
filter (or its `not.`) on a column, the value made of letters, digits and `-_.:@+ ` (no quotes,
commas, parentheses or wildcards, which other syntax gives meaning to).  A template is checked
when it is made: filled with the request's own values it must give exactly what rendering that
request gives, else the shape is rendered afresh every time.  Nothing here decides what SQL
is: it only replays what the renderer produced.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from supalite.rest.parse import RESERVED_KEYS, last_word

_SIZE = 512  # shapes kept per process
_MARK = "\ue000"  # a private-use character: a value holding it is never a placeholder
_PLAIN = re.compile(r"(not\.)?(eq|neq|gt|gte|lt|lte)\.([A-Za-z0-9_\-.:@+ ]+)")

Items = Sequence[tuple[str, str | None]]


def placeholder(i: int) -> str:
    return f"{_MARK}{i}{_MARK}"


@dataclass(frozen=True)
class Shape:
    """A query string with its plain comparison values taken out."""

    key: tuple[tuple[str, str | None], ...]  # the items, placeholders for the values
    values: tuple[str, ...]  # the values, in placeholder order


def shape_of(items: Items) -> Shape | None:
    """The query's shape; None when it carries the placeholder mark itself."""
    key: list[tuple[str, str | None]] = []
    values: list[str] = []
    for k, v in items:
        if _MARK in k or (v is not None and _MARK in v):
            return None
        m = _PLAIN.fullmatch(v) if v is not None and last_word(k) not in RESERVED_KEYS else None
        if m is None:
            key.append((k, v))
            continue
        key.append((k, f"{m.group(1) or ''}{m.group(2)}.{placeholder(len(values))}"))
        values.append(m.group(3))
    return Shape(tuple(key), tuple(values))


@dataclass(frozen=True)
class Rendered:
    """What rendering a read gives: its statements' texts, their parameters, and whatever
    else the read needs that came from the query (`extra`, compared, never looked into)."""

    statements: tuple[str, ...]
    params: tuple[tuple[Any, ...], ...]
    extra: Any


class _Slot(int):
    """A parameter filled from the request's values: the value at this index."""


@dataclass(frozen=True)
class Template:
    statements: tuple[str, ...]
    params: tuple[tuple[Any, ...], ...]
    extra: Any

    @classmethod
    def build(cls, rendered: Rendered, n_values: int) -> Template | None:
        """From a rendering of the shape (placeholders as values); None if a placeholder ended
        up anywhere but as a whole parameter."""
        slots = {placeholder(i): _Slot(i) for i in range(n_values)}
        if any(_MARK in s for s in rendered.statements):
            return None
        params: list[tuple[Any, ...]] = []
        for group in rendered.params:
            out: list[Any] = []
            for p in group:
                if isinstance(p, str) and _MARK in p:
                    if p not in slots:
                        return None
                    out.append(slots[p])
                else:
                    out.append(p)
            params.append(tuple(out))
        return cls(rendered.statements, tuple(params), rendered.extra)

    def fill(self, values: Sequence[str]) -> Rendered:
        params = tuple(
            tuple(values[p] if type(p) is _Slot else p for p in group) for group in self.params
        )
        return Rendered(self.statements, params, self.extra)


class _Uncacheable:
    pass


UNCACHEABLE = _Uncacheable()


class ShapeCache:
    """Templates by shape (and whatever else the rendering depended on), for one schema cache:
    a new schema cache (after DDL) starts them afresh.  (Inserts keep their own kind of entry
    here, under keys of their own: see rest/service.py.)"""

    def __init__(self, size: int = _SIZE) -> None:
        self.size = size
        self._for: object = None
        self._templates: OrderedDict[Hashable, object] = OrderedDict()

    def get(self, schema_cache: object, key: Hashable) -> object:
        if schema_cache is not self._for:
            self._for = schema_cache
            self._templates.clear()
            return None
        found = self._templates.get(key)
        if found is not None:
            self._templates.move_to_end(key)
        return found

    def put(self, key: Hashable, template: object) -> None:
        self._templates[key] = template
        if len(self._templates) > self.size:
            self._templates.popitem(last=False)
