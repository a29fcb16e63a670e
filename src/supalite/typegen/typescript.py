"""TypeScript types in the shape `supabase gen types typescript` prints.

The rules are postgres-meta's TypeScript template (the CLI's generator): the type mapping, which
functions PostgREST can call and how their results look, Insert/Update optionality, the
relationships supabase-js reads for embedding, and the helper types after `Database`.  The
layout is what its prettier pass makes of it (80 columns, no semicolons, quotes only where a
name needs them).  Nothing from the database but names and enum labels reaches the output, and
those only as escaped string literals, so no comment or code can be smuggled in.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TypeVar

from supalite.typegen.model import Catalog, Function, FunctionArg, PgType, Relation, sort_key

WIDTH = 80
# The helper types that follow `Database` in the CLI's output (Tables<>, TablesInsert<>, …), as
# its formatter lays them out; their default schema is `public`.
_HELPERS = (Path(__file__).with_name("helpers.ts")).read_text(encoding="utf-8")
_Named = TypeVar("_Named", PgType, Relation)
_IDENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")

_NUMBER = frozenset({"int2", "int4", "int8", "float4", "float8", "numeric"})
_STRING = frozenset(
    {"bytea", "bpchar", "varchar", "date", "text", "citext", "time", "timetz", "timestamp",
     "timestamptz", "uuid", "vector", "interval"}
)  # fmt: skip


def lit(value: str) -> str:
    """A string literal as prettier writes it: double quotes unless the value holds more
    double quotes than single ones."""
    quoted = json.dumps(value, ensure_ascii=False)
    if value.count('"') <= value.count("'"):
        return quoted
    # JSON escapes every `"` as `\"` and nothing else before a quote: swap the escaping over.
    return "'" + quoted[1:-1].replace('\\"', '"').replace("'", "\\'") + "'"


def key(name: str) -> str:
    """A property name: bare when it is an identifier, else a string literal (prettier's
    quote-props "as-needed")."""
    return name if _IDENT.match(name) else lit(name)


def _indent(text: str, by: int = 2) -> str:
    pad = " " * by
    return "\n".join(pad + line if line else line for line in text.split("\n"))


def expanded(members: list[str]) -> str:
    if not members:
        return "{}"
    return "{\n" + "\n".join(_indent(m) for m in members) + "\n}"


def inline_or_expanded(members: list[str], prefix: str, at: int) -> str:
    """`{ a; b }` when `prefix` plus that fits in the width at column `at`, else expanded."""
    if all("\n" not in m for m in members):
        one = "{ " + "; ".join(members) + " }" if members else "{}"
        if at + len(prefix) + len(one) <= WIDTH:
            return one
    return expanded(members)


def union_member(name: str, parts: list[str], at: int) -> str:
    """`name: A | B`, or one alternative per line when that does not fit (as prettier does)."""
    line = f"{name}: {' | '.join(parts)}"
    if len(parts) < 2 or at + len(line) <= WIDTH or any("\n" in p for p in parts[:-1]):
        return line
    return f"{name}:\n" + "\n".join(f"  | {p}" for p in parts)


class _Generator:
    def __init__(self, catalog: Catalog) -> None:
        self.cat = catalog
        self.included = set(catalog.schemas)
        self.relations = {r.oid: r for r in catalog.relations}
        self.tables = [r for r in catalog.relations if not r.is_view]
        self.views = [r for r in catalog.relations if r.kind == "view"]
        by_oid = sorted(catalog.types.values(), key=lambda t: t.oid)
        self.enums = [t for t in by_oid if t.enum_values]
        self.composites = [t for t in by_oid if t.attributes]
        self.functions = {s: catalog.functions_of(s) for s in catalog.schemas}

    # ---------------------------------------------------------------- type mapping

    def ts_type(self, schema: str, pg: str) -> list[str]:
        """The TypeScript type of the Postgres type named `pg`, as union alternatives."""
        if pg == "bool":
            return ["boolean"]
        if pg in _NUMBER:
            return ["number"]
        if pg in _STRING:
            return ["string"]
        if pg in ("json", "jsonb"):
            return ["Json"]
        if pg == "void":
            return ["undefined"]
        if pg == "record":
            return ["Record<string, unknown>"]
        if pg.startswith("_"):
            inner = self.ts_type(schema, pg[1:])
            return [f"({' | '.join(inner)})[]" if len(inner) > 1 else f"{inner[0]}[]"]
        enum = self._named(self.enums, schema, pg)
        if enum is not None:
            if enum.schema in self.included:
                return [f'Database[{lit(enum.schema)}]["Enums"][{lit(enum.name)}]']
            return [lit(v) for v in enum.enum_values]
        composite = self._named(self.composites, schema, pg)
        if composite is not None:
            if composite.schema in self.included:
                return [f'Database[{lit(composite.schema)}]["CompositeTypes"][{lit(pg)}]']
            return ["unknown"]
        for group, kind in ((self.tables, "Tables"), (self.views, "Views")):
            rel = self._named(group, schema, pg)
            if rel is not None:
                return [f'Database[{lit(rel.schema)}]["{kind}"][{lit(rel.name)}]["Row"]']
        return ["unknown"]

    @staticmethod
    def _named(items: list[_Named], schema: str, name: str) -> _Named | None:
        found = [t for t in items if t.name == name]
        return next((t for t in found if t.schema == schema), found[0] if found else None)

    def type_of(self, schema: str, oid: int) -> list[str]:
        t = self.cat.types.get(oid)
        return self.ts_type(schema, t.name) if t else ["unknown"]

    @staticmethod
    def nullable(parts: list[str], is_nullable: bool) -> list[str]:
        # `unknown` already includes null.
        if not is_nullable or parts in (["unknown"], ["any"]):
            return parts
        return [*parts, "null"]

    def column(self, schema: str, name: str, pg: str, nullable: bool, at: int, opt: bool) -> str:
        parts = self.nullable(self.ts_type(schema, pg), nullable)
        return union_member(key(name) + ("?" if opt else ""), parts, at)

    # ---------------------------------------------------------------- functions

    def _result_relation_name(self, f: Function) -> str | None:
        """The table, view or composite type whose rows `f` returns, by name."""
        if f.return_type_relation_oid is None:
            return None
        rel = self.relations.get(f.return_type_relation_oid)
        if rel is not None:
            return rel.name
        t = self.cat.types.get(f.return_type_oid)
        return t.name if t is not None and t.relation_oid is not None else None

    def returns(self, schema: str, f: Function, at: int) -> str:
        table_args = sorted(f.table_args, key=lambda a: sort_key(a.name))
        if table_args:  # RETURNS TABLE (...)
            return expanded(
                [
                    union_member(key(a.name), self.type_of(schema, a.type_oid), at + 2)
                    for a in table_args
                ]
            )
        rel = self.relations.get(f.return_type_relation_oid or 0)
        if rel is not None and rel.schema == schema:
            return self.row(schema, rel, at)
        return " | ".join(self.type_of(schema, f.return_type_oid))

    def row(self, schema: str, rel: Relation, at: int) -> str:
        cols = sorted(rel.columns, key=lambda c: sort_key(c.name))
        return expanded(
            [self.column(schema, c.name, c.type, c.nullable, at + 2, False) for c in cols]
        )

    def setof_options(self, f: Function) -> list[str] | None:
        """How postgrest-js may select from the rows a function returns (`SetofOptions`)."""
        target = self._result_relation_name(f)
        many = f.rows is not None and f.rows > 1
        options: list[str] | None = None
        if target is not None:
            options = ['from: "*"', f"to: {lit(target)}", f"isOneToOne: {_js(not many)}",
                       f"isSetofReturn: {_js(f.returns_set)}"]  # fmt: skip
        if len(f.args) == 1 and self.cat.is_row_type(f.args[0].type_oid) and target is not None:
            source = self.cat.types[f.args[0].type_oid].format
            set_of_rows = f.returns_set and f.return_type_relation_oid is not None
            options = [f"from: {lit(source)}", f"to: {lit(target)}",
                       f"isOneToOne: {_js(not many if set_of_rows else True)}",
                       f"isSetofReturn: {_js(set_of_rows)}"]  # fmt: skip
        return options

    def _arg_types(self, schema: str, args: list[FunctionArg], prefix: str, at: int) -> str:
        if not args:
            return "never"
        members = [
            f"{key(a.name)}{'?' if a.has_default else ''}: "
            + " | ".join(self.type_of(schema, a.type_oid))
            for a in args
        ]
        return inline_or_expanded(members, prefix, at)

    def _error(self, f: Function, fns: list[Function], schema: str) -> str | None:
        """The CLI's type-level error for an overload PostgREST cannot call."""
        args = f.in_args
        if len(fns) > 1 and not args:
            others = [o for o in fns if o is not f and len(o.in_args) == 1
                      and not o.in_args[0].name and o.in_args[0].has_default]  # fmt: skip
            if others:
                t = self.cat.types.get(others[0].return_type_oid)
                return (
                    f"Could not choose the best candidate function between: {schema}.{f.name}(), "
                    f"{schema}.{f.name}( => {t.name if t else 'unknown'}). Try renaming the "
                    "parameters or the function itself in the database so function overloading "
                    "can be resolved"
                )
        if len(fns) > 1 and len(args) == 1 and args[0].name:
            others = [o for o in fns if o is not f and len(o.in_args) == 1
                      and o.in_args[0].name == args[0].name
                      and o.in_args[0].type_oid != args[0].type_oid]  # fmt: skip
            if others:
                listed = []
                for o in sorted([f, *others], key=lambda o: o.in_args[0].type_oid):
                    sig = ", ".join(f"{a.name} => {self._type_name(a.type_oid)}" for a in o.in_args)
                    listed.append(f"{schema}.{f.name}({sig})")
                return (
                    f"Could not choose the best candidate function between: {', '.join(listed)}. "
                    "Try renaming the parameters or the function itself in the database so "
                    "function overloading can be resolved"
                )
        one = args[0] if len(args) == 1 else None
        if (
            one is not None
            and not one.name
            and self.cat.is_row_type(one.type_oid)
            and self._result_relation_name(f) is None
        ):
            return (
                f"the function {schema}.{f.name} with parameter or with a single unnamed "
                "json/jsonb parameter, but no matches were found in the schema cache"
            )
        return None

    def _type_name(self, oid: int) -> str:
        t = self.cat.types.get(oid)
        return t.name if t else "unknown"

    def signature(self, schema: str, f: Function, fns: list[Function], at: int) -> list[str]:
        """The members of `{ Args; Returns; SetofOptions? }` for one overload, at column `at`."""
        error = self._error(f, fns, schema)
        args = self._arg_types(schema, sorted(f.in_args, key=lambda a: sort_key(a.name)),
                               "Args: ", at)  # fmt: skip
        if error is not None:
            one = f"{{ error: true }} & {lit(error)}"
            result = (
                one
                if at + len("Returns: ") + len(one) <= WIDTH
                else (f"{{\n  error: true\n}} & {lit(error)}")
            )
        else:
            result = self.returns(schema, f, at)
        options = self.setof_options(f)
        target = self._result_relation_name(f)
        single_row = not (f.rows is not None and f.rows > 1) and target is not None
        if f.returns_set and not single_row:
            result += "[]"
        members = [f"Args: {args}", f"Returns: {result}"]
        if options:
            members.append(f"SetofOptions: {expanded(options)}")
        return members

    def function_entry(self, schema: str, name: str, fns: list[Function], at: int) -> str:
        fns = sorted(fns, key=lambda f: (sort_key(f.argument_types), sort_key(f.return_type)))
        if len(fns) == 1:
            sig = self.signature(schema, fns[0], fns, at + 2)
            return f"{key(name)}: " + self._sig_object(sig, f"{key(name)}: ", at)
        alternatives = []
        for f in fns:
            sig = self.signature(schema, f, fns, at + 6)
            alternatives.append(self._sig_object(sig, "| ", at + 2, union=True))
        return f"{key(name)}:\n" + "\n".join(_indent("| " + a) for a in alternatives)

    @staticmethod
    def _sig_object(members: list[str], prefix: str, at: int, union: bool = False) -> str:
        body = inline_or_expanded(members, prefix, at)
        # In a union, prettier hangs the members under `| {` two columns further in.
        return _indent(body, 2).lstrip() if union and "\n" in body else body

    # ---------------------------------------------------------------- relations

    def relationships(self, rel: Relation) -> str:
        found = sorted(
            (r for r in rel.relationships if r.referenced_schema == rel.schema),
            key=lambda r: (sort_key(r.foreign_key_name), sort_key(r.referenced_relation),
                           json.dumps(list(r.referenced_columns))),
        )  # fmt: skip
        if not found:
            return "Relationships: []"
        items = [
            expanded(
                [
                    f"foreignKeyName: {lit(r.foreign_key_name)}",
                    f"columns: {_array(r.columns)}",
                    f"isOneToOne: {_js(r.is_one_to_one)}",
                    f"referencedRelation: {lit(r.referenced_relation)}",
                    f"referencedColumns: {_array(r.referenced_columns)}",
                ]
            )
            + ","
            for r in found
        ]
        return "Relationships: [\n" + "\n".join(_indent(i) for i in items) + "\n]"

    def computed_fields(self, schema: str, rel: Relation, at: int) -> list[str]:
        """Functions of the row — computed fields, and computed relationships (the row type of
        the table they return) — as fields of the Row type.  The CLI picks them by their
        argument list as Postgres prints it (`pg_get_function_arguments`) being the relation's
        name: one unnamed argument, without a default, of the row type of a relation in the
        function's schema that the search_path shows unqualified (a table of a schema off the
        search_path prints as `schema.table`, and gets none)."""
        out = []
        for f in self.functions[schema]:
            if f.argument_types != rel.name:
                continue
            result = self.returns(schema, f, at)
            if "\n" in result:
                out.append(f"{key(f.name)}: {result} | null")
            else:
                out.append(union_member(key(f.name), self.nullable([result], True), at))
        return out

    def table(self, schema: str, rel: Relation, at: int) -> str:
        cols = sorted(rel.columns, key=lambda c: sort_key(c.name))
        inner = at + 2
        row = [self.column(schema, c.name, c.type, c.nullable, inner + 2, False) for c in cols]
        row += self.computed_fields(schema, rel, inner + 2)
        insert: list[str] = []
        update: list[str] = []
        for c in cols:
            if c.identity == "ALWAYS":
                insert.append(f"{key(c.name)}?: never")
                update.append(f"{key(c.name)}?: never")
                continue
            optional = c.nullable or c.identity is not None or c.has_default
            insert.append(self.column(schema, c.name, c.type, c.nullable, inner + 2, optional))
            update.append(self.column(schema, c.name, c.type, c.nullable, inner + 2, True))
        return expanded(
            [f"Row: {expanded(row)}", f"Insert: {expanded(insert)}",
             f"Update: {expanded(update)}", self.relationships(rel)]
        )  # fmt: skip

    def view(self, schema: str, rel: Relation, at: int) -> str:
        cols = sorted(rel.columns, key=lambda c: sort_key(c.name))
        inner = at + 2
        row = [self.column(schema, c.name, c.type, c.nullable, inner + 2, False) for c in cols]
        row += self.computed_fields(schema, rel, inner + 2)
        members = [f"Row: {expanded(row)}"]
        if rel.is_updatable:
            writable = [
                self.column(schema, c.name, c.type, True, inner + 2, True)
                if c.updatable
                else f"{key(c.name)}?: never"
                for c in cols
            ]
            members += [f"Insert: {expanded(writable)}", f"Update: {expanded(writable)}"]
        members.append(self.relationships(rel))
        return expanded(members)

    # ---------------------------------------------------------------- the file

    def schema(self, schema: str) -> str:
        at = 6  # the column of a section's entries: Database > schema > section > entry
        rels = sorted(
            (r for r in self.cat.relations if r.schema == schema), key=lambda r: sort_key(r.name)
        )
        tables = [f"{key(r.name)}: {self.table(schema, r, at)}" for r in rels if not r.is_view]
        views = [f"{key(r.name)}: {self.view(schema, r, at)}" for r in rels if r.is_view]
        by_name: dict[str, list[Function]] = {}
        for f in self.functions[schema]:
            by_name.setdefault(f.name, []).append(f)
        functions = [self.function_entry(schema, n, fns, at) for n, fns in by_name.items()]
        enums = [
            union_member(key(t.name), [lit(v) for v in t.enum_values], at)
            for t in self.cat.enums(schema)
        ]
        composites = [
            f"{key(t.name)}: "
            + expanded(
                [
                    union_member(key(n), self.nullable(self.type_of(schema, oid), True), at + 2)
                    for n, oid in t.attributes
                ]
            )
            for t in self.cat.composites(schema)
        ]
        sections = [
            ("Tables", tables),
            ("Views", views),
            ("Functions", functions),
            ("Enums", enums),
            ("CompositeTypes", composites),
        ]
        return expanded(
            [
                f"{name}: {expanded(entries or ['[_ in never]: never'])}"
                for name, entries in sections
            ]
        )

    def constants(self) -> str:
        schemas = []
        for s in self.cat.schemas:
            entries = []
            for t in self.cat.enums(s):
                values = [lit(v) for v in t.enum_values]
                one = f"{key(t.name)}: [{', '.join(values)}],"
                if 6 + len(one) > WIDTH:
                    one = f"{key(t.name)}: [\n" + "\n".join(f"  {v}," for v in values) + "\n],"
                entries.append(one)
            enums = "Enums: " + (expanded(entries) if entries else "{}") + ","
            schemas.append(f"{key(s)}: " + expanded([enums]) + ",")
        return "export const Constants = " + expanded(schemas) + " as const"

    def render(self) -> str:
        database = expanded([f"{key(s)}: {self.schema(s)}" for s in self.cat.schemas])
        return (
            _JSON
            + "\n\nexport type Database = "
            + database
            + "\n\n"
            + _HELPERS
            + "\n"
            + self.constants()
            + "\n"
        )


def _js(value: bool) -> str:
    return "true" if value else "false"


def _array(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(lit(v) for v in values) + "]"


def generate_typescript(catalog: Catalog) -> str:
    return _Generator(catalog).render()


_JSON = """export type Json =
  | string
  | number
  | boolean
  | null
  | { [key: string]: Json | undefined }
  | Json[]"""
