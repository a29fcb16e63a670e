"""Python types: a module of pydantic v2 models, in the shape `supabase gen types --lang python`
prints (postgres-meta's Python template), plus the functions PostgREST can call.

Per table `<Schema><Table>` (a BaseModel of the row) and `<Schema><Table>Insert` /
`...Update` (TypedDicts: what a write may send); a BaseModel per view and composite type; a
`Literal` alias per enum; per function `...Args` (TypedDict) and `...Returns`.  Fields keep
the column's name as their alias, so rows from the Data API validate as they come.

Where the CLI's output does not validate real rows it is changed, and said so here: json
columns are `JsonValue` (the CLI's `Json[Any]` wants a JSON *string*), timetz is `str` (its
"+02" offset is not one `datetime.time` parses), columns that may not be
written (GENERATED ALWAYS identities) are left out of Insert/Update, composite attributes are
Optional (Postgres never makes them NOT NULL), a type without a model is `Any` rather than a name
the module does not define, and TypedDict comes from typing_extensions (pydantic validates
typing's own only from Python 3.12).  Names from the database reach the module only as
identifiers made of [A-Za-z0-9_] and as string literals, so no code can be smuggled in.
"""

from __future__ import annotations

import json
import keyword
import re

from pydantic import BaseModel

from supalite.typegen.model import Catalog, Column, Function, PgType, Relation, sort_key

_HEADER = """from __future__ import annotations

import datetime
import uuid
from typing import Annotated, Any, List, Literal, Optional, TypeAlias

from pydantic import BaseModel, Field, JsonValue
from typing_extensions import NotRequired, TypedDict
"""

# Names the module itself defines or imports: no generated name may take them.
_MODULE_NAMES = frozenset(
    {"annotations", "datetime", "uuid", "Annotated", "Any", "List", "Literal", "NotRequired",
     "Optional", "TypeAlias", "TypedDict", "BaseModel", "Field", "JsonValue"}
)  # fmt: skip
# A field may not shadow what BaseModel defines, nor a module name (the annotations use them).
_RESERVED_FIELDS = frozenset(n for n in dir(BaseModel) if not n.startswith("_")) | _MODULE_NAMES

_PY_TYPES = {
    "bool": "bool",
    "int2": "int",
    "int4": "int",
    "int8": "int",
    "float4": "float",
    "float8": "float",
    "numeric": "float",
    "bytea": "bytes",
    "bpchar": "str",
    "varchar": "str",
    "text": "str",
    "citext": "str",
    "date": "datetime.date",
    "time": "datetime.time",
    "timetz": "str",  # Postgres writes "12:34:56+02", which datetime.time does not parse
    "timestamp": "datetime.datetime",
    "timestamptz": "datetime.datetime",
    "uuid": "uuid.UUID",
    "vector": "List[Any]",
    "interval": "str",
    "json": "JsonValue",
    "jsonb": "JsonValue",
    "void": "None",
    "record": "dict[str, Any]",
    **{
        r: "str"
        for r in (
            "int4range",
            "int4multirange",
            "int8range",
            "int8multirange",
            "numrange",
            "nummultirange",
            "tsrange",
            "tsmultirange",
            "tstzrange",
            "tstzmultirange",
            "daterange",
            "datemultirange",
        )
    },
}


def class_name(*parts: str) -> str:
    """PascalCase of each part (`pokemon_center` → `PokemonCenter`), as the CLI names classes."""
    words = [w for p in parts for w in re.split(r"[^A-Za-z0-9]", p) if w]
    out = "".join(w[0].upper() + w[1:] for w in words) or "Unnamed"
    return "T" + out if out[0].isdigit() else out


def field_name(name: str) -> str:
    """snake_case (`victory-road` → `victory_road`), as the CLI names fields, then made a valid
    pydantic field name."""
    out = "_".join(w.lower() for w in re.split(r"[^A-Za-z0-9]+", name) if w) or "field"
    # Not an identifier, or in pydantic's protected `model_` namespace: a prefix.
    if out[0].isdigit() or out.startswith("model_"):
        out = "f_" + out
    if keyword.iskeyword(out) or out in _RESERVED_FIELDS:
        out += "_"
    return out


def _str(value: str) -> str:
    return json.dumps(value)  # ASCII-only, escapes every quote and control character


class _Names:
    """Unique names: the second `PublicAB` (from `a_b` and `a-b`) becomes `PublicAB2`."""

    def __init__(self, taken: frozenset[str] = frozenset()) -> None:
        self.taken = set(taken)

    def __call__(self, wanted: str) -> str:
        name, n = wanted, 1
        while name in self.taken:
            n += 1
            name = f"{wanted}{n}"
        self.taken.add(name)
        return name


class _Generator:
    def __init__(self, catalog: Catalog) -> None:
        self.cat = catalog
        self.names = _Names(_MODULE_NAMES)
        self.enums: dict[int, str] = {}
        self.models: dict[int, str] = {}  # relation or composite type oid → its model class
        by_oid = sorted(catalog.types.values(), key=lambda t: t.oid)
        for t in by_oid:
            if t.enum_values:
                self.enums[t.oid] = self.names(class_name(t.schema, t.name))
        for r in sorted(catalog.relations, key=lambda r: (sort_key(r.schema), sort_key(r.name))):
            self.models[r.oid] = self.names(class_name(r.schema, r.name))
        self.composites = [t for t in by_oid if t.attributes and t.schema in catalog.schemas]
        for t in self.composites:
            self.models[t.oid] = self.names(class_name(t.schema, t.name))
        self.by_name: dict[str, list[tuple[str, str]]] = {}  # type name → [(schema, class)]
        for t in by_oid:
            if t.oid in self.enums:
                self.by_name.setdefault(t.name, []).append((t.schema, self.enums[t.oid]))
            elif t.oid in self.models:
                self.by_name.setdefault(t.name, []).append((t.schema, self.models[t.oid]))
        for r in catalog.relations:
            self.by_name.setdefault(r.name, []).append((r.schema, self.models[r.oid]))

    def py_type(self, schema: str, pg: str) -> str:
        if pg.startswith("_"):
            return f"List[{self.py_type(schema, pg[1:])}]"
        if pg in _PY_TYPES:
            return _PY_TYPES[pg]
        found = self.by_name.get(pg, [])
        match = next((c for s, c in found if s == schema), found[0][1] if found else None)
        return match or "Any"

    def type_of(self, schema: str, oid: int) -> str:
        t = self.cat.types.get(oid)
        return self.py_type(schema, t.name) if t else "Any"

    # ---------------------------------------------------------------- classes

    @staticmethod
    def _fields(pairs: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
        """(python name, pg name, annotation) with python names unique within the class."""
        names = _Names()
        return [(names(field_name(pg)), pg, t) for pg, t in pairs]

    def model(self, name: str, pairs: list[tuple[str, str]]) -> str:
        lines = [f"    {py}: {t} = Field(alias={_str(pg)})" for py, pg, t in self._fields(pairs)]
        return f"class {name}(BaseModel):\n" + ("\n".join(lines) or "    pass")

    def typed_dict(self, name: str, entries: list[tuple[str, str, bool]]) -> str:
        pairs = [(pg, t) for pg, t, _ in entries]
        optional = {pg: opt for pg, _, opt in entries}
        lines = []
        for py, pg, t in self._fields(pairs):
            annotated = f"Annotated[{t}, Field(alias={_str(pg)})]"
            lines.append(f"    {py}: {f'NotRequired[{annotated}]' if optional[pg] else annotated}")
        return f"class {name}(TypedDict):\n" + ("\n".join(lines) or "    pass")

    def column_type(self, schema: str, c: Column) -> str:
        t = self.py_type(schema, c.type)
        return f"Optional[{t}]" if c.nullable else t

    def relation(self, r: Relation) -> list[str]:
        cols = sorted(r.columns, key=lambda c: sort_key(c.name))
        name = self.models[r.oid]
        out = [self.model(name, [(c.name, self.column_type(r.schema, c)) for c in cols])]
        if r.is_view:
            return out
        writable = [c for c in cols if c.identity != "ALWAYS"]
        insert = [
            (c.name, self.column_type(r.schema, c),
             c.nullable or c.identity is not None or c.has_default)
            for c in writable
        ]  # fmt: skip
        update = [(c.name, self.column_type(r.schema, c), True) for c in writable]
        out.append(self.typed_dict(self.names(name + "Insert"), insert))
        out.append(self.typed_dict(self.names(name + "Update"), update))
        return out

    def composite(self, t: PgType) -> str:
        pairs = [(n, f"Optional[{self.type_of(t.schema, oid)}]") for n, oid in t.attributes]
        return self.model(self.models[t.oid], pairs)

    def function(self, f: Function) -> list[str]:
        base = self.names(class_name(f.schema, f.name))
        args = [
            (a.name, self.type_of(f.schema, a.type_oid), a.has_default)
            for a in sorted(f.in_args, key=lambda a: sort_key(a.name))
        ]
        out = [self.typed_dict(self.names(base + "Args"), args)]
        table = f.table_args
        if table:
            row = self.names(base + "Row")
            out.append(
                self.model(
                    row,
                    [(a.name, f"Optional[{self.type_of(f.schema, a.type_oid)}]") for a in table],
                )
            )
            result = row
        else:
            rel = f.return_type_relation_oid
            model = self.models.get(rel) if rel is not None else None
            result = model or self.type_of(f.schema, f.return_type_oid)
            if not f.returns_set and result != "None":
                result = f"Optional[{result}]"  # a scalar function may return null
        if f.returns_set:
            result = f"List[{result}]"
        out.append(f"{self.names(base + 'Returns')}: TypeAlias = {result}")
        return out

    def render(self) -> str:
        blocks: list[str] = []
        for oid, name in self.enums.items():
            values = ", ".join(_str(v) for v in self.cat.types[oid].enum_values)
            blocks.append(f"{name}: TypeAlias = Literal[{values}]")
        # In catalog order, as the CLI: tables, views, materialized views, composite types.
        for kinds in (("table", "partitioned_table", "foreign_table"), ("view",),
                      ("materialized_view",)):  # fmt: skip
            for r in self.cat.relations:
                if r.kind in kinds:
                    blocks += self.relation(r)
        blocks += [self.composite(t) for t in self.composites]
        for schema in self.cat.schemas:
            for f in self.cat.functions_of(schema):
                blocks += self.function(f)
        return _HEADER + "\n" + "\n\n".join(blocks) + "\n"


def generate_python(catalog: Catalog) -> str:
    return _Generator(catalog).render()
