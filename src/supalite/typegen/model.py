"""What type generation reads from the catalog, as plain data: the generators' input."""

from __future__ import annotations

from dataclasses import dataclass, field

# PostgREST calls a function with one unnamed argument of these types (json, jsonb, text) with
# the request body as that argument.
UNNAMED_ARG_TYPES = frozenset({114, 3802, 25})


class TypegenError(Exception):
    """Bad input (an unknown schema) or a catalog that cannot be read: a message for the user."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # the type's name (a domain's base type), `_name` for arrays, as postgres-meta
    nullable: bool
    has_default: bool  # a DEFAULT or a generation expression
    identity: str | None  # "ALWAYS", "BY DEFAULT" or None
    generated: bool
    updatable: bool


@dataclass(frozen=True)
class Relationship:
    foreign_key_name: str
    columns: tuple[str, ...]
    is_one_to_one: bool
    referenced_schema: str
    referenced_relation: str
    referenced_columns: tuple[str, ...]


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key of `schema.relation`, with the column numbers views are matched by."""

    relationship: Relationship
    schema: str
    relation: str
    oid: int
    attnums: tuple[int, ...]
    referenced_oid: int
    referenced_attnums: tuple[int, ...]


@dataclass
class Relation:
    oid: int
    schema: str
    name: str
    kind: str  # table, view, materialized_view, foreign_table, partitioned_table
    is_updatable: bool  # a view that takes inserts and updates
    columns: list[Column]
    relationships: list[Relationship] = field(default_factory=list)

    @property
    def is_view(self) -> bool:
        return self.kind in ("view", "materialized_view")


@dataclass(frozen=True)
class FunctionArg:
    name: str  # "" when unnamed
    mode: str  # in, out, inout, variadic, table
    type_oid: int
    has_default: bool


@dataclass(frozen=True)
class Function:
    oid: int
    schema: str
    name: str
    args: tuple[FunctionArg, ...]
    argument_types: str  # pg_get_function_arguments: orders overloads as the CLI does
    return_type: str  # pg_get_function_result
    return_type_oid: int
    return_type_relation_oid: int | None  # the row type's relation (table, view, composite)
    returns_set: bool
    rows: int | None  # the ROWS estimate of a set-returning function

    @property
    def in_args(self) -> list[FunctionArg]:
        return [a for a in self.args if a.mode in ("in", "inout", "variadic")]

    @property
    def table_args(self) -> list[FunctionArg]:
        return [a for a in self.args if a.mode == "table"]


@dataclass(frozen=True)
class PgType:
    oid: int
    schema: str
    name: str
    format: str  # format_type(): schema-qualified when not on the search path
    enum_values: tuple[str, ...]
    attributes: tuple[tuple[str, int], ...]  # a composite type's (name, type oid)
    relation_oid: int | None  # set for row types (tables, views, composite types)


@dataclass
class Catalog:
    schemas: list[str]  # the schemas to generate, sorted
    relations: list[Relation]
    functions: list[Function]
    types: dict[int, PgType]  # every enum and composite type, and every type referenced

    def enums(self, schema: str) -> list[PgType]:
        return sorted(
            (t for t in self.types.values() if t.schema == schema and t.enum_values),
            key=lambda t: sort_key(t.name),
        )

    def composites(self, schema: str) -> list[PgType]:
        return sorted(
            (t for t in self.types.values() if t.schema == schema and t.attributes),
            key=lambda t: sort_key(t.name),
        )

    def is_row_type(self, oid: int) -> bool:
        t = self.types.get(oid)
        return t is not None and t.relation_oid is not None

    def callable(self, f: Function) -> bool:
        """Whether the CLI lists `f`: the overloads PostgREST can tell apart by their arguments
        (named ones, or one unnamed json/jsonb/text or row argument)."""
        args = f.in_args
        if not args or all(a.name for a in args):
            return True
        if all(a.name or (a.has_default and a.type_oid in UNNAMED_ARG_TYPES) for a in args):
            return True
        one = args[0]
        return (
            len(args) == 1
            and not one.name
            and (one.type_oid in UNNAMED_ARG_TYPES or self.is_row_type(one.type_oid))
        )

    def functions_of(self, schema: str) -> list[Function]:
        """The callable functions of `schema`, by name."""
        return sorted(
            (f for f in self.functions if f.schema == schema and self.callable(f)),
            key=lambda f: sort_key(f.name),
        )


def sort_key(name: str) -> tuple[str, str]:
    """An approximation of JavaScript's `localeCompare`, which orders the CLI's output."""
    return (name.casefold(), name)
