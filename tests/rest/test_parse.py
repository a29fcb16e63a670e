"""Tests for the Data API query-string parser (PostgREST's ApiRequest stage)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supalite.rest.parse import (
    MAX_DEPTH,
    Field,
    Filter,
    JsonIndex,
    JsonKey,
    JsonStep,
    LogicExpr,
    LogicTree,
    OpExpr,
    OpFts,
    OpIn,
    OpIs,
    OpIsDistinct,
    OpQuant,
    OpSimple,
    OrderTerm,
    ParseError,
    Preferences,
    QueryParams,
    RowRange,
    SelectField,
    SelectItem,
    SelectRelation,
    SpreadRelation,
    parse_prefer,
    parse_query,
    parse_query_string,
    parse_range,
    preference_applied,
    split_query_string,
    top_level_range,
)

STAR = SelectField(Field("*"))


def key(k: str) -> JsonStep:
    return JsonStep("->", JsonKey(k))


def text_key(k: str) -> JsonStep:
    return JsonStep("->>", JsonKey(k))


def col(name: str, **kw: object) -> SelectField:
    return SelectField(Field(name), **kw)  # type: ignore[arg-type]


def eq(name: str, value: str) -> Filter:
    return Filter(Field(name), OpExpr(OpQuant("eq", value)))


def select(text: str) -> tuple[SelectItem, ...]:
    return parse_query([("select", text)]).select


def one_filter(k: str, v: str) -> tuple[tuple[str, ...], Filter]:
    (only,) = parse_query([(k, v)]).filters
    return only


def parse_error(items: list[tuple[str, str | None]], **kw: bool) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse_query(items, **kw)
    return info.value


# ---------------------------------------------------------------------------------- select

SELECT_CASES: list[tuple[str, tuple[SelectItem, ...]]] = [
    ("*", (STAR,)),
    ("", ()),
    ("id,name", (col("id"), col("name"))),
    (" id , first name ", (col("id"), col("first name"))),
    ("alias:col", (col("col", alias="alias"),)),
    ('"my alias":"my col"', (col("my col", alias="my alias"),)),
    ('"a,b(c)"', (col("a,b(c)"),)),
    ('"quote\\"d"', (col('quote"d'),)),
    ("kebab-case-col", (col("kebab-case-col"),)),
    ("$x,_y,123", (col("$x"), col("_y"), col("123"))),
    ("café", (col("café"),)),
    ("col::text", (col("col", cast="text"),)),
    ("col::character varying", (col("col", cast="character varying"),)),
    ("data->a->>b", (SelectField(Field("data", (key("a"), text_key("b")))),)),
    ("data->0", (SelectField(Field("data", (JsonStep("->", JsonIndex(0)),))),)),
    ("data->-1", (SelectField(Field("data", (JsonStep("->", JsonIndex(-1)),))),)),
    ("data->>-78", (SelectField(Field("data", (JsonStep("->>", JsonIndex(-78)),))),)),
    ("data->!@#$%^&*_a", (SelectField(Field("data", (key("!@#$%^&*_a"),))),)),
    ('data->"a.b"', (SelectField(Field("data", (key("a.b"),))),)),
    ("data->a-b", (SelectField(Field("data", (key("a-b"),))),)),
    (
        "alias:data->a->>b::text",
        (SelectField(Field("data", (key("a"), text_key("b"))), alias="alias", cast="text"),),
    ),
    ("count()", (SelectField(Field("*"), aggregate="count"),)),
    (
        "n:count()::int",
        (SelectField(Field("*"), alias="n", aggregate="count", aggregate_cast="int"),),
    ),
    ("count", (col("count"),)),
    ("amount.sum()", (col("amount", aggregate="sum"),)),
    (
        "amount.avg(),amount.min(),amount.max(),id.count()",
        (
            col("amount", aggregate="avg"),
            col("amount", aggregate="min"),
            col("amount", aggregate="max"),
            col("id", aggregate="count"),
        ),
    ),
    (
        "total:amount::numeric.sum()::int",
        (col("amount", alias="total", cast="numeric", aggregate="sum", aggregate_cast="int"),),
    ),
    ("data->>x.max()", (SelectField(Field("data", (text_key("x"),)), aggregate="max"),)),
    ("rel(*)", (SelectRelation("rel", (STAR,)),)),
    ("rel()", (SelectRelation("rel", ()),)),
    ("rel (id)", (SelectRelation("rel", (col("id"),)),)),
    ("rel( id , name )", (SelectRelation("rel", (col("id"), col("name"))),)),
    ("al:rel(id)", (SelectRelation("rel", (col("id"),), alias="al"),)),
    ("rel!fk_name(id)", (SelectRelation("rel", (col("id"),), hint="fk_name"),)),
    ("rel!inner(id)", (SelectRelation("rel", (col("id"),), join="inner"),)),
    ("rel!left(id)", (SelectRelation("rel", (col("id"),), join="left"),)),
    ("rel!hint!inner(id)", (SelectRelation("rel", (col("id"),), hint="hint", join="inner"),)),
    (
        "a:rel!inner!hint(id)",
        (SelectRelation("rel", (col("id"),), alias="a", hint="hint", join="inner"),),
    ),
    ("rel!inner!left(id)", (SelectRelation("rel", (col("id"),), join="inner"),)),
    ("rel!leftover(id)", (SelectRelation("rel", (col("id"),), hint="leftover"),)),
    ('rel!"fk-name.x"(id)', (SelectRelation("rel", (col("id"),), hint="fk-name.x"),)),
    ("rel(count())", (SelectRelation("rel", (SelectField(Field("*"), aggregate="count"),)),)),
    (
        "roles(character,films(title))",
        (SelectRelation("roles", (col("character"), SelectRelation("films", (col("title"),)))),),
    ),
    (
        "*,...client(*),other(*)",
        (STAR, SpreadRelation("client", (STAR,)), SelectRelation("other", (STAR,))),
    ),
    (
        "...rel!hint!inner(a,b)",
        (SpreadRelation("rel", (col("a"), col("b")), hint="hint", join="inner"),),
    ),
    (
        "...rel(x:a,...deep(b))",
        (SpreadRelation("rel", (col("a", alias="x"), SpreadRelation("deep", (col("b"),)))),),
    ),
    ("rel(id) ,x", (SelectRelation("rel", (col("id"),)), col("x"))),
]


@pytest.mark.parametrize(("text", "expected"), SELECT_CASES)
def test_select(text: str, expected: tuple[SelectItem, ...]) -> None:
    assert select(text) == expected


def test_select_defaults_to_star_and_first_value_wins() -> None:
    assert parse_query([]).select == (STAR,)
    assert parse_query([("select", None)]).select == (STAR,)
    assert parse_query([("select", "a"), ("select", "b")]).select == (col("a"),)


# --------------------------------------------------------------------------------- filters

FILTER_CASES: list[tuple[str, str, tuple[tuple[str, ...], Filter]]] = [
    ("id", "eq.1", ((), eq("id", "1"))),
    ("id", "eq.", ((), eq("id", ""))),
    ("name", 'eq."quoted, kept"', ((), eq("name", '"quoted, kept"'))),
    ("a", "eq.x.y(z)", ((), eq("a", "x.y(z)"))),
    *[
        ("a", f"{op}.5", ((), Filter(Field("a"), OpExpr(OpQuant(op, "5")))))
        for op in ("eq", "gt", "gte", "lt", "lte", "match", "imatch")
    ],
    *[
        ("a", f"{op}.v", ((), Filter(Field("a"), OpExpr(OpSimple(op, "v")))))
        for op in ("neq", "cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj")
    ],
    ("a", "like.*foo*", ((), Filter(Field("a"), OpExpr(OpQuant("like", "%foo%"))))),
    ("a", "ilike.A*", ((), Filter(Field("a"), OpExpr(OpQuant("ilike", "A%"))))),
    ("a", "match.^a*$", ((), Filter(Field("a"), OpExpr(OpQuant("match", "^a*$"))))),
    ("a", "like(any).{O*,P*}", ((), Filter(Field("a"), OpExpr(OpQuant("like", "{O%,P%}", "any"))))),
    ("a", "eq(all).{1,2}", ((), Filter(Field("a"), OpExpr(OpQuant("eq", "{1,2}", "all"))))),
    ("a", "gte(any).{1,2}", ((), Filter(Field("a"), OpExpr(OpQuant("gte", "{1,2}", "any"))))),
    (
        "a",
        "imatch(any).{^a,b$}",
        ((), Filter(Field("a"), OpExpr(OpQuant("imatch", "{^a,b$}", "any")))),
    ),
    ("a", "not.eq.2", ((), Filter(Field("a"), OpExpr(OpQuant("eq", "2"), negated=True)))),
    (
        "a",
        "not.like(all).{a*}",
        ((), Filter(Field("a"), OpExpr(OpQuant("like", "{a%}", "all"), negated=True))),
    ),
    ("a", "in.(1,2,3)", ((), Filter(Field("a"), OpExpr(OpIn(("1", "2", "3")))))),
    (
        "a",
        'in.("a,b","c\\"d","e\\\\f",g)',
        ((), Filter(Field("a"), OpExpr(OpIn(("a,b", 'c"d', "e\\f", "g"))))),
    ),
    ("a", "in.( 1 , 2 )", ((), Filter(Field("a"), OpExpr(OpIn(("1 ", " 2 ")))))),
    ("a", "in.()", ((), Filter(Field("a"), OpExpr(OpIn(()))))),
    ("a", 'in.("")', ((), Filter(Field("a"), OpExpr(OpIn(("",)))))),
    ("a", "not.in.(x)", ((), Filter(Field("a"), OpExpr(OpIn(("x",)), negated=True)))),
    ("a", "is.null", ((), Filter(Field("a"), OpExpr(OpIs("null"))))),
    ("a", "is.NuLl", ((), Filter(Field("a"), OpExpr(OpIs("null"))))),
    ("a", "is.NOT_NULL", ((), Filter(Field("a"), OpExpr(OpIs("not_null"))))),
    ("a", "is.True", ((), Filter(Field("a"), OpExpr(OpIs("true"))))),
    ("a", "is.false", ((), Filter(Field("a"), OpExpr(OpIs("false"))))),
    ("a", "not.is.unknown", ((), Filter(Field("a"), OpExpr(OpIs("unknown"), negated=True)))),
    ("a", "isdistinct.5", ((), Filter(Field("a"), OpExpr(OpIsDistinct("5"))))),
    ("t", "fts.cat & dog", ((), Filter(Field("t"), OpExpr(OpFts("fts", "cat & dog"))))),
    (
        "t",
        "fts(french).amusant",
        ((), Filter(Field("t"), OpExpr(OpFts("fts", "amusant", "french")))),
    ),
    ("t", "plfts.a b", ((), Filter(Field("t"), OpExpr(OpFts("plfts", "a b"))))),
    ("t", "phfts(english).a b", ((), Filter(Field("t"), OpExpr(OpFts("phfts", "a b", "english"))))),
    (
        "t",
        'not.wfts."a" -b',
        ((), Filter(Field("t"), OpExpr(OpFts("wfts", '"a" -b'), negated=True))),
    ),
    (
        "data->>blood_type",
        "eq.A-",
        ((), Filter(Field("data", (text_key("blood_type"),)), OpExpr(OpQuant("eq", "A-")))),
    ),
    ("data->age", "gt.20", ((), Filter(Field("data", (key("age"),)), OpExpr(OpQuant("gt", "20"))))),
    (
        "arr->0->>k",
        "eq.x",
        (
            (),
            Filter(
                Field("arr", (JsonStep("->", JsonIndex(0)), text_key("k"))),
                OpExpr(OpQuant("eq", "x")),
            ),
        ),
    ),
    ("rel.col", "eq.1", (("rel",), eq("col", "1"))),
    (
        "roles.actors.first_name",
        "like.*Tom*",
        (("roles", "actors"), Filter(Field("first_name"), OpExpr(OpQuant("like", "%Tom%")))),
    ),
    (
        "rel.data->>k",
        "eq.1",
        (("rel",), Filter(Field("data", (text_key("k"),)), OpExpr(OpQuant("eq", "1")))),
    ),
    ('"a.b"', "eq.1", ((), eq("a.b", "1"))),
    ("my col", "eq.1", ((), eq("my col", "1"))),
    ("actors", "not.is.null", ((), Filter(Field("actors"), OpExpr(OpIs("null"), negated=True)))),
    ("rel.select", "eq.1", (("rel",), eq("select", "1"))),
]


@pytest.mark.parametrize(("k", "v", "expected"), FILTER_CASES)
def test_filter(k: str, v: str, expected: tuple[tuple[str, ...], Filter]) -> None:
    assert one_filter(k, v) == expected


def test_root_filters_and_reserved_keys() -> None:
    q = parse_query(
        [
            ("select", "id"),
            ("columns", "a"),
            ("on_conflict", "a"),
            ("id", "eq.1"),
            ("rel.id", "eq.2"),
            ("order", "id"),
            ("rel.limit", "1"),
            ("x.offset", "1"),
            ("or", "(a.eq.1)"),
            ("rel.and", "(b.eq.1)"),
            ("valueless", None),
        ]
    )
    assert q.filters == (((), eq("id", "1")), (("rel",), eq("id", "2")))
    assert q.root_filters == (eq("id", "1"),)


# ---------------------------------------------------------------------------- logic trees


def f(name: str, op: str, value: str) -> Filter:
    return Filter(Field(name), OpExpr(OpQuant(op, value)))  # type: ignore[arg-type]


LOGIC_CASES: list[tuple[str, str, tuple[tuple[str, ...], LogicTree]]] = [
    (
        "or",
        "(age.lt.18,age.gt.21)",
        ((), LogicExpr("or", (f("age", "lt", "18"), f("age", "gt", "21")))),
    ),
    ("and", "(a.eq.1)", ((), LogicExpr("and", (f("a", "eq", "1"),)))),
    (
        "not.or",
        "(a.eq.1,b.eq.2)",
        ((), LogicExpr("or", (f("a", "eq", "1"), f("b", "eq", "2")), negated=True)),
    ),
    ("not.and", "(a.eq.1)", ((), LogicExpr("and", (f("a", "eq", "1"),), negated=True))),
    (
        "or",
        "(age.eq.14,not.and(age.gte.11,age.lte.17))",
        (
            (),
            LogicExpr(
                "or",
                (
                    f("age", "eq", "14"),
                    LogicExpr("and", (f("age", "gte", "11"), f("age", "lte", "17")), negated=True),
                ),
            ),
        ),
    ),
    ("or", "( a.eq.1 , b.eq.2 )", ((), LogicExpr("or", (f("a", "eq", "1 "), f("b", "eq", "2 "))))),
    (
        "or",
        '(name.eq."a,b",name.eq."x)y")',
        ((), LogicExpr("or", (f("name", "eq", "a,b"), f("name", "eq", "x)y")))),
    ),
    (
        "or",
        "(tags.cs.{a,b},tags.ov.{1})",
        (
            (),
            LogicExpr(
                "or",
                (
                    Filter(Field("tags"), OpExpr(OpSimple("cs", "{a,b}"))),
                    Filter(Field("tags"), OpExpr(OpSimple("ov", "{1}"))),
                ),
            ),
        ),
    ),
    (
        "or",
        '(id.in.(1,"2,3"),id.is.null,id.not.eq.5)',
        (
            (),
            LogicExpr(
                "or",
                (
                    Filter(Field("id"), OpExpr(OpIn(("1", "2,3")))),
                    Filter(Field("id"), OpExpr(OpIs("null"))),
                    Filter(Field("id"), OpExpr(OpQuant("eq", "5"), negated=True)),
                ),
            ),
        ),
    ),
    (
        "or",
        "(name.like(any).{a*,b*},d->>k.eq.1,t.fts(english).x)",
        (
            (),
            LogicExpr(
                "or",
                (
                    Filter(Field("name"), OpExpr(OpQuant("like", "{a%,b%}", "any"))),
                    Filter(Field("d", (text_key("k"),)), OpExpr(OpQuant("eq", "1"))),
                    Filter(Field("t"), OpExpr(OpFts("fts", "x", "english"))),
                ),
            ),
        ),
    ),
    (
        "or",
        "(actors.is.null,directors.not.is.null)",
        (
            (),
            LogicExpr(
                "or",
                (
                    Filter(Field("actors"), OpExpr(OpIs("null"))),
                    Filter(Field("directors"), OpExpr(OpIs("null"), negated=True)),
                ),
            ),
        ),
    ),
    ("or", "(and.eq.1,or.eq.2)", ((), LogicExpr("or", (f("and", "eq", "1"), f("or", "eq", "2"))))),
    ("rel.or", "(a.eq.1)", (("rel",), LogicExpr("or", (f("a", "eq", "1"),)))),
    ("a.b.not.and", "(x.eq.1)", (("a", "b"), LogicExpr("and", (f("x", "eq", "1"),), negated=True))),
    ("or", "(a.eq.)", ((), LogicExpr("or", (f("a", "eq", ""),)))),
]


@pytest.mark.parametrize(("k", "v", "expected"), LOGIC_CASES)
def test_logic(k: str, v: str, expected: tuple[tuple[str, ...], LogicTree]) -> None:
    assert parse_query([(k, v)]).logic == (expected,)


def test_logic_values_keep_quoting_semantics() -> None:
    (tree,) = parse_query([("or", '(id.in.(1,"2,3"),id.is.null)')]).logic
    assert tree == (
        (),
        LogicExpr(
            "or",
            (
                Filter(Field("id"), OpExpr(OpIn(("1", "2,3")))),
                Filter(Field("id"), OpExpr(OpIs("null"))),
            ),
        ),
    )


# ---------------------------------------------------------------------------------- order

ORDER_CASES: list[tuple[str, str, tuple[tuple[str, ...], tuple[OrderTerm, ...]]]] = [
    ("order", "age", ((), (OrderTerm(Field("age")),))),
    (
        "order",
        "age.desc,height.asc",
        ((), (OrderTerm(Field("age"), "desc"), OrderTerm(Field("height"), "asc"))),
    ),
    ("order", "age.desc.nullslast", ((), (OrderTerm(Field("age"), "desc", "last"),))),
    ("order", "age.nullsfirst", ((), (OrderTerm(Field("age"), None, "first"),))),
    ("order", "json_col->>k.desc", ((), (OrderTerm(Field("json_col", (text_key("k"),)), "desc"),))),
    (
        "order",
        "arr->0.asc",
        ((), (OrderTerm(Field("arr", (JsonStep("->", JsonIndex(0)),)), "asc"),)),
    ),
    (
        "order",
        "directors(last_name).desc",
        ((), (OrderTerm(Field("last_name"), "desc", relation="directors"),)),
    ),
    (
        "order",
        "clients(json_col->key).desc.nullsfirst",
        ((), (OrderTerm(Field("json_col", (key("key"),)), "desc", "first", relation="clients"),)),
    ),
    (
        "order",
        "rel(data->0)",
        ((), (OrderTerm(Field("data", (JsonStep("->", JsonIndex(0)),)), relation="rel"),)),
    ),
    (
        "order",
        "name,clients(name),id",
        (
            (),
            (
                OrderTerm(Field("name")),
                OrderTerm(Field("name"), relation="clients"),
                OrderTerm(Field("id")),
            ),
        ),
    ),
    ("order", " a , b.desc", ((), (OrderTerm(Field("a")), OrderTerm(Field("b"), "desc")))),
    ("order", '"my col".desc', ((), (OrderTerm(Field("my col"), "desc"),))),
    ("actors.order", "last_name", (("actors",), (OrderTerm(Field("last_name")),))),
    ("a.b.order", "x.asc", (("a", "b"), (OrderTerm(Field("x"), "asc"),))),
]


@pytest.mark.parametrize(("k", "v", "expected"), ORDER_CASES)
def test_order(k: str, v: str, expected: tuple[tuple[str, ...], tuple[OrderTerm, ...]]) -> None:
    assert parse_query([(k, v)]).order == (expected,)


# ------------------------------------------------------------- limit, offset, columns, etc.

Items = list[tuple[str, str | None]]
Ranges = tuple[tuple[tuple[str, ...], RowRange], ...]
RANGE_CASES: list[tuple[Items, Ranges]] = [
    ([], ()),
    ([("limit", "15"), ("offset", "30")], (((), RowRange(30, 15)),)),
    ([("limit", "0")], (((), RowRange(0, 0)),)),
    ([("offset", "5")], (((), RowRange(5, None)),)),
    ([("offset", "-4")], (((), RowRange(0, None)),)),
    ([("limit", "abc")], (((), RowRange(0, None)),)),
    ([("limit", " 7 ")], (((), RowRange(0, 7)),)),
    ([("limit", "1"), ("limit", "2")], (((), RowRange(0, 2)),)),
    ([("actors.limit", "10"), ("actors.offset", "2")], ((("actors",), RowRange(2, 10)),)),
    ([("a.b.limit", "1"), ("limit", "3")], ((("a", "b"), RowRange(0, 1)), ((), RowRange(0, 3)))),
    ([("limit", "99999999999999999999")], (((), RowRange(0, 2**63 - 1)),)),
]


@pytest.mark.parametrize(("items", "expected"), RANGE_CASES)
def test_limit_offset(
    items: list[tuple[str, str | None]], expected: tuple[tuple[tuple[str, ...], RowRange], ...]
) -> None:
    q = parse_query(items)
    assert q.ranges == expected
    for path, r in expected:
        assert q.range_for(path) == r
    assert q.range_for(("nowhere",)) == RowRange()


@pytest.mark.parametrize("k", ["limit", "rel.limit"])
def test_negative_limit_is_pgrst103(k: str) -> None:
    e = parse_error([(k, "-1")])
    assert (e.code, e.status, e.message, e.details) == (
        "PGRST103",
        416,
        "Requested range not satisfiable",
        "Limit should be greater than or equal to zero.",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("source,publication_date", ("source", "publication_date")),
        ('"a","b c"', ("a", "b c")),
        ("a , b,a", ("a", "b")),
        ('"with,comma"', ("with,comma",)),
    ],
)
def test_columns_and_on_conflict(text: str, expected: tuple[str, ...]) -> None:
    q = parse_query([("columns", text), ("on_conflict", text)])
    assert q.columns == expected
    assert q.on_conflict == expected
    assert parse_query([]).columns is None
    assert parse_query([]).on_conflict is None


def test_canonical_query_string() -> None:
    # PostgREST's doctest, which parses as an RPC read so that bare values are arguments.
    assert parse_query_string("a=1&c=3&b=2&d", is_rpc_read=True).canonical == "a=1&b=2&c=3&d="
    assert parse_query([("v", "2"), ("v", "1"), ("a", "x y,é")], is_rpc_read=True).canonical == (
        "a=x%20y%2C%C3%A9&v=2,1"
    )


# -------------------------------------------------------------------------------------- rpc


def test_rpc_read_arguments() -> None:
    q = parse_query(
        [
            ("a", "1"),
            ("v", "1"),
            ("v", "2"),
            ("id", "eq.5"),
            ("x", "eq"),
            ("y", "isdistinct"),
            ("x.z", "3"),
            ("e", ""),
            ("select", "id"),
            ("limit", "1"),
            ("arr", "{1,2,3}"),
        ],
        is_rpc_read=True,
    )
    assert q.rpc_args == (
        ("a", "1"),
        ("v", "1"),
        ("v", "2"),
        ("x", "eq"),
        ("y", "isdistinct"),
        ("z", "3"),
        ("e", ""),
        ("arr", "{1,2,3}"),
    )
    assert q.filters == (((), eq("id", "5")),)
    assert q.select == (col("id"),)


@pytest.mark.parametrize(
    ("v", "column"), [("not.sure", 5), ("in.abc", 4), ("is.maybe", 4), ("in.(1", 6)]
)
def test_rpc_read_value_that_starts_like_an_operator_is_an_error(v: str, column: int) -> None:
    e = parse_error([("a", v)], is_rpc_read=True)
    assert e.code == "PGRST100"
    assert e.message.endswith(f"(line 1, column {column})")


def test_without_rpc_a_bare_value_is_an_error() -> None:
    e = parse_error([("id", "val")])
    assert e.to_dict() == {
        "code": "PGRST100",
        "message": '"failed to parse filter (val)" (line 1, column 1)',
        "details": 'unexpected "v" expecting "not" or operator (eq, gt, ...)',
        "hint": None,
    }


# ----------------------------------------------------------------------------------- errors

# (parameters, message, details): PostgREST's own doctests where they apply.
ERROR_CASES: list[tuple[list[tuple[str, str | None]], str, str]] = [
    (
        [("a.b", "noop.0")],
        '"failed to parse filter (noop.0)" (line 1, column 1)',
        'unexpected "o" expecting "not" or operator (eq, gt, ...)',
    ),
    (
        [("a", "fts().value")],
        '"failed to parse filter (fts().value)" (line 1, column 5)',
        'unexpected ")" expecting operator (eq, gt, ...)',
    ),
    (
        [("a", "eq().value")],
        '"failed to parse filter (eq().value)" (line 1, column 4)',
        'unexpected ")" expecting operator (eq, gt, ...)',
    ),
    (
        [("a", "is().value")],
        '"failed to parse filter (is().value)" (line 1, column 3)',
        'unexpected "(" expecting operator (eq, gt, ...)',
    ),
    (
        [("a", "in().value")],
        '"failed to parse filter (in().value)" (line 1, column 3)',
        'unexpected "(" expecting operator (eq, gt, ...)',
    ),
    (
        [("a", "neq(any).x")],
        '"failed to parse filter (neq(any).x)" (line 1, column 4)',
        'unexpected "(" expecting operator (eq, gt, ...)',
    ),
    (
        [("a", "")],
        '"failed to parse filter ()" (line 1, column 1)',
        'unexpected end of input expecting "not" or operator (eq, gt, ...)',
    ),
    (
        [("a", "in.(1)x")],
        '"failed to parse filter (in.(1)x)" (line 1, column 7)',
        "unexpected 'x' expecting end of input",
    ),
    (
        [("a", "is.nullx")],
        '"failed to parse filter (is.nullx)" (line 1, column 8)',
        "unexpected 'x' expecting end of input",
    ),
    (
        [("a", "in.(1,2")],
        '"failed to parse filter (in.(1,2)" (line 1, column 8)',
        'unexpected end of input expecting "," or ")"',
    ),
    (
        [("a", "is.maybe")],
        '"failed to parse filter (is.maybe)" (line 1, column 4)',
        'unexpected "m" expecting isVal: (null, not_null, true, false, unknown)',
    ),
    (
        [("a[]", "eq.1")],
        '"failed to parse tree path (a[])" (line 1, column 2)',
        'unexpected \'[\' expecting letter, digit, "-", delimiter (.), "->>", "->" or end of input',
    ),
    (
        [("select", "id,clients(name[])")],
        '"failed to parse select parameter (id,clients(name[]))" (line 1, column 16)',
        'unexpected \'[\' expecting letter, digit, "-", "->>", "->", "::", ".", ")", '
        '"," or end of input',
    ),
    (
        [("select", "name::")],
        '"failed to parse select parameter (name::)" (line 1, column 7)',
        "unexpected end of input expecting letter or digit",
    ),
    (
        [("select", "*!hint")],
        '"failed to parse select parameter (*!hint)" (line 1, column 2)',
        'unexpected \'!\' expecting ")", "," or end of input',
    ),
    (
        [("select", "a->>--34")],
        '"failed to parse select parameter (a->>--34)" (line 1, column 6)',
        'unexpected "-" expecting digit',
    ),
    (
        [("select", "id,")],
        '"failed to parse select parameter (id,)" (line 1, column 4)',
        'unexpected end of input expecting "...", field name (* or [a..z0..9_$]), "*" or "count()"',
    ),
    (
        [("select", "rel(id) ")],
        '"failed to parse select parameter (rel(id) )" (line 1, column 9)',
        'unexpected end of input expecting ","',
    ),
    (
        [("select", "col::int::text")],
        '"failed to parse select parameter (col::int::text)" (line 1, column 9)',
        'unexpected \':\' expecting letter, digit, ".", ")", "," or end of input',
    ),
    (
        [("select", "é!")],
        '"failed to parse select parameter (\\233!)" (line 1, column 2)',
        'unexpected \'!\' expecting letter, digit, "-", "->>", "->", "::", ".", ")", '
        '"," or end of input',
    ),
    (
        [("order", "clients(name,id)")],
        '"failed to parse order (clients(name,id))" (line 1, column 8)',
        'unexpected \'(\' expecting letter, digit, "-", "->>", "->", '
        'delimiter (.), "," or end of input',
    ),
    (
        [("order", "id.ac")],
        '"failed to parse order (id.ac)" (line 1, column 4)',
        'unexpected "c" expecting "asc", "desc", "nullsfirst" or "nullslast"',
    ),
    (
        [("order", "id.descc")],
        '"failed to parse order (id.descc)" (line 1, column 8)',
        "unexpected 'c' expecting delimiter (.), \",\" or end of input",
    ),
    (
        [("order", "id.nullslasttt")],
        '"failed to parse order (id.nullslasttt)" (line 1, column 13)',
        "unexpected 't' expecting \",\" or end of input",
    ),
    (
        [("order", "id.asc.nlsfst")],
        '"failed to parse order (id.asc.nlsfst)" (line 1, column 8)',
        'unexpected "l" expecting "nullsfirst" or "nullslast"',
    ),
    (
        [("order", "")],
        '"failed to parse order ()" (line 1, column 1)',
        "unexpected end of input expecting field name (* or [a..z0..9_$])",
    ),
    (
        [("or", "()")],
        '"failed to parse logic tree (())" (line 1, column 4)',
        'unexpected ")" expecting field name (* or [a..z0..9_$]), negation operator (not) or '
        "logic operator (and, or)",
    ),
    (
        [("or", "(id.in.1,2,id.eq.3)")],
        '"failed to parse logic tree ((id.in.1,2,id.eq.3))" (line 1, column 10)',
        'unexpected "1" expecting "("',
    ),
    (
        [("or", ")(")],
        '"failed to parse logic tree ()()" (line 1, column 3)',
        'unexpected ")" expecting "("',
    ),
    (
        [("and", "(ord(id.eq.1,id.eq.1),id.eq.2)")],
        '"failed to parse logic tree ((ord(id.eq.1,id.eq.1),id.eq.2))" (line 1, column 7)',
        'unexpected "d" expecting "("',
    ),
    (
        [("or", "(id.eq.1,not.xor(id.eq.2,id.eq.3))")],
        '"failed to parse logic tree ((id.eq.1,not.xor(id.eq.2,id.eq.3)))" (line 1, column 16)',
        'unexpected "x" expecting logic operator (and, or)',
    ),
    (
        [("or", "(a.eq.1)x")],
        '"failed to parse logic tree ((a.eq.1)x)" (line 1, column 11)',
        "unexpected 'x' expecting end of input",
    ),
    (
        [("or", "")],
        '"failed to parse logic tree ()" (line 1, column 3)',
        'unexpected end of input expecting "("',
    ),
    (
        [("columns", "")],
        '"failed to parse columns parameter ()" (line 1, column 1)',
        "unexpected end of input expecting field name (* or [a..z0..9_$])",
    ),
    (
        [("on_conflict", "a,,b")],
        '"failed to parse on_conflict parameter (a,,b)" (line 1, column 3)',
        'unexpected "," expecting field name (* or [a..z0..9_$])',
    ),
    (
        [("a", "eq.1"), ("b", "noop\nx")],
        '"failed to parse filter (noop\\nx)" (line 1, column 1)',
        'unexpected "o" expecting "not" or operator (eq, gt, ...)',
    ),
    (
        [("or", "(a.eq.1\n,b.zz.2)")],
        '"failed to parse logic tree ((a.eq.1\\n,b.zz.2))" (line 2, column 4)',
        'unexpected "z" expecting "not" or operator (eq, gt, ...)',
    ),
    # Only spaces and tabs are blanks, as in PostgREST.
    (
        [("or", "(a.eq.1,\nb.eq.2)")],
        '"failed to parse logic tree ((a.eq.1,\\nb.eq.2))" (line 1, column 11)',
        'unexpected "\\n" expecting field name (* or [a..z0..9_$]), '
        "negation operator (not) or logic operator (and, or)",
    ),
    (
        [("a", "eq\t.x")],
        '"failed to parse filter (eq\\t.x)" (line 1, column 3)',
        'unexpected "\\t" expecting operator (eq, gt, ...)',
    ),
    (
        [("a", "x\x00")],
        '"failed to parse query parameter value (x\\NUL)" (line 1, column 2)',
        'unexpected "\\NUL"',
    ),
    (
        [("a\ud800", "eq.1")],
        '"failed to parse query parameter name (a\\55296)" (line 1, column 2)',
        'unexpected "\\55296"',
    ),
]


@pytest.mark.parametrize(("items", "message", "details"), ERROR_CASES)
def test_errors(items: list[tuple[str, str | None]], message: str, details: str) -> None:
    e = parse_error(items)
    assert (e.code, e.status, e.message, e.details, e.hint) == (
        "PGRST100",
        400,
        message,
        details,
        None,
    )


def test_first_error_follows_postgrest_order() -> None:
    # PostgREST checks order, logic, columns, select, filters, on_conflict in that order.
    e = parse_error([("a", "bad"), ("select", "x,"), ("order", "x.y")])
    assert e.message.startswith('"failed to parse order')
    e = parse_error([("a", "bad"), ("select", "x,")])
    assert e.message.startswith('"failed to parse select parameter')


def test_nesting_depth_limit() -> None:
    ok = "a(" * MAX_DEPTH + ")" * MAX_DEPTH
    assert isinstance(select(ok)[0], SelectRelation)
    deep = "a(" * (MAX_DEPTH + 1) + ")" * (MAX_DEPTH + 1)
    e = parse_error([("select", deep)])
    assert e.code == "PGRST100"
    assert e.details == f"maximum nesting depth ({MAX_DEPTH}) exceeded"
    assert e.message.endswith(f"(line 1, column {2 * MAX_DEPTH + 2})")

    def logic(depth: int) -> str:
        return "(" + "or(" * (depth - 1) + "a.eq.1" + ")" * depth

    assert parse_query([("or", logic(MAX_DEPTH))]).logic
    e = parse_error([("or", logic(MAX_DEPTH + 1))])
    assert e.details == f"maximum nesting depth ({MAX_DEPTH}) exceeded"
    # Hostile depth fails fast and cleanly, without recursion errors.
    parse_error([("select", "a(" * 100_000)])
    parse_error([("or", "(" + "or(" * 100_000)])


def test_huge_inputs_parse_and_long_messages_are_truncated() -> None:
    values = ",".join(str(i) for i in range(50_000))
    (only,) = parse_query([("id", f"in.({values})")]).filters
    assert isinstance(only[1].expr.operation, OpIn)
    assert len(only[1].expr.operation.values) == 50_000
    e = parse_error([("select", "a" * 200_000 + "!")])
    assert len(e.message) < 1100


# ---------------------------------------------------------------------- query-string split


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", []),
        (b"?a=1&b=2", [("a", "1"), ("b", "2")]),
        (b"a=1;b&&c=", [("a", "1"), ("b", None), ("c", "")]),
        (b"q=a+b%2Bc", [("q", "a b+c")]),
        (b"select=id%2Cname&x=%ZZ", [("select", "id,name"), ("x", "%ZZ")]),
        (b"k=a=b", [("k", "a=b")]),
        ("n=caf%C3%A9", [("n", "café")]),
    ],
)
def test_split_query_string(raw: bytes | str, expected: list[tuple[str, str | None]]) -> None:
    assert split_query_string(raw) == expected


@pytest.mark.parametrize("raw", [b"a=%FF", b"%C3=1", b"a=\xff", "a=\ud800"])
def test_split_query_string_rejects_invalid_utf8(raw: bytes | str) -> None:
    with pytest.raises(ParseError) as info:
        split_query_string(raw)
    assert (info.value.code, info.value.status) == ("PGRST100", 400)


def test_parse_query_string() -> None:
    q = parse_query_string(b"select=id,rel(*)&id=eq.1&order=id.desc&limit=2")
    assert q == QueryParams(
        select=(col("id"), SelectRelation("rel", (STAR,))),
        filters=(((), eq("id", "1")),),
        order=(((), (OrderTerm(Field("id"), "desc"),)),),
        ranges=(((), RowRange(0, 2)),),
    )
    assert q.canonical == "id=eq.1&limit=2&order=id.desc&select=id%2Crel%28%2A%29"


# ---------------------------------------------------------------------------- Range header


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("0-19", RowRange(0, 20)),
        ("10-", RowRange(10, None)),
        ("5-5", RowRange(5, 1)),
        ("items=0-1", None),
        ("-5", None),
        ("0-1-2", None),
        ("", None),
    ],
)
def test_parse_range(header: str | None, expected: RowRange | None) -> None:
    assert parse_range(header, "items") == expected


def test_parse_range_lower_greater_than_upper() -> None:
    with pytest.raises(ParseError) as info:
        parse_range("5-2")
    assert info.value.to_dict() == {
        "code": "PGRST103",
        "message": "Requested range not satisfiable",
        "details": "The lower boundary must be lower than or equal to the upper boundary in "
        "the Range header.",
        "hint": None,
    }
    assert info.value.status == 416


@pytest.mark.parametrize(
    ("items", "header", "expected"),
    [
        ([], None, RowRange()),
        ([], RowRange(0, 20), RowRange(0, 20)),
        ([("limit", "5")], RowRange(0, 20), RowRange(0, 5)),
        ([("offset", "10")], RowRange(0, 20), RowRange(10, 10)),
        ([("limit", "10"), ("offset", "5")], RowRange(8, None), RowRange(8, 7)),
        ([("limit", "0")], RowRange(0, 20), RowRange(0, 0)),
        ([("limit", "0"), ("offset", "5")], None, RowRange(5, 0)),
    ],
)
def test_top_level_range(
    items: list[tuple[str, str | None]], header: RowRange | None, expected: RowRange
) -> None:
    assert top_level_range(parse_query(items), header) == expected


def test_top_level_range_empty_intersection() -> None:
    with pytest.raises(ParseError) as info:
        top_level_range(parse_query([("offset", "30")]), RowRange(0, 10))
    assert (info.value.code, info.value.status) == ("PGRST103", 416)


# ---------------------------------------------------------------------------- Prefer header


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], Preferences()),
        ([""], Preferences()),
        (["return=representation"], Preferences(representation="representation")),
        (["return=minimal", "return=headers-only"], Preferences(representation="minimal")),
        (
            [
                "resolution=ignore-duplicates, count=exact, timezone=America/Los_Angeles, "
                "max-affected=100"
            ],
            Preferences(
                resolution="ignore-duplicates",
                count="exact",
                timezone="America/Los_Angeles",
                max_affected=100,
            ),
        ),
        (
            [
                "resolution=ignore-duplicates",
                "count=exact",
                "missing=null",
                "handling=lenient",
                "invalid",
                "max-affected=5999",
            ],
            Preferences(
                resolution="ignore-duplicates",
                count="exact",
                missing="null",
                handling="lenient",
                max_affected=5999,
                invalid=("invalid",),
            ),
        ),
        (["tx=commit, tx=rollback"], Preferences(tx="commit")),
        (
            [
                "count=exact,    tx=commit   ,return=representation , missing=default, "
                "handling=strict, "
                "anything"
            ],
            Preferences(
                count="exact",
                tx="commit",
                representation="representation",
                missing="default",
                handling="strict",
                invalid=("anything",),
            ),
        ),
        (["count=planned,", "count=estimated"], Preferences(count="planned", invalid=("",))),
        (
            ["Return=representation", "resolution=merge-duplicates"],
            Preferences(resolution="merge-duplicates", invalid=("Return=representation",)),
        ),
        (["max-affected=abc, timezone="], Preferences(timezone="")),
        (
            ["params=single-object, foo\x00"],
            Preferences(invalid=("params=single-object", "foo\x00")),
        ),
    ],
)
def test_parse_prefer(values: list[str], expected: Preferences) -> None:
    assert parse_prefer(values) == expected


def test_prefer_tx_needs_override_permission() -> None:
    prefs = parse_prefer(["tx=rollback"], allow_tx_override=False)
    assert prefs == Preferences()


def test_prefer_strict_handling() -> None:
    parse_prefer(["handling=lenient, foo"]).check_strict()
    parse_prefer(["handling=strict, count=exact"]).check_strict()
    with pytest.raises(ParseError) as info:
        parse_prefer(["handling=strict, foo", "bar"]).check_strict()
    assert info.value.status == 400
    assert info.value.to_dict() == {
        "code": "PGRST122",
        "message": "Invalid preferences given with handling=strict",
        "details": "Invalid preferences: foo, bar",
        "hint": None,
    }


def test_max_affected_only_with_strict() -> None:
    assert parse_prefer(["max-affected=5"]).effective_max_affected is None
    assert parse_prefer(["max-affected=5, handling=strict"]).effective_max_affected == 5


@pytest.mark.parametrize(
    ("values", "action", "conflict", "expected"),
    [
        ([], "read", False, None),
        (["count=exact"], "read", False, "count=exact"),
        (["return=representation"], "read", False, None),
        (
            ["return=representation", "tx=rollback"],
            "update",
            False,
            "return=representation, tx=rollback",
        ),
        (
            ["resolution=merge-duplicates, return=representation, missing=default"],
            "create",
            True,
            "resolution=merge-duplicates, missing=default, return=representation",
        ),
        (["resolution=merge-duplicates"], "create", False, None),
        (["missing=default"], "delete", False, None),
        (["return=minimal"], "upsert", False, "return=minimal"),
        (
            ["handling=strict, max-affected=10, timezone=UTC"],
            "delete",
            False,
            "handling=strict, timezone=UTC, max-affected=10",
        ),
        (["handling=strict, max-affected=10"], "create", False, "handling=strict"),
        (["max-affected=10"], "rpc", False, None),
        (["handling=strict, max-affected=10"], "rpc", False, "handling=strict, max-affected=10"),
    ],
)
def test_preference_applied(
    values: list[str], action: str, conflict: bool, expected: str | None
) -> None:
    prefs = parse_prefer(values)
    assert preference_applied(prefs, action, resolution_applies=conflict) == expected  # type: ignore[arg-type]


# ------------------------------------------------------------------------- property tests

HOSTILE = st.lists(
    st.one_of(
        st.characters(),
        st.sampled_from([*'()!.,:*"\\->{}[] \t\n\x00\ud800', "->", "->>", "::", "..."]),
    ),
).map("".join)
GRAMMARISH = st.lists(
    st.sampled_from(
        [
            *'ab()!.,:*"\\->{} _01',
            "eq.",
            "in.",
            "is.",
            "not.",
            "or(",
            "and(",
            "->",
            "->>",
            "::",
            "...",
            "(any)",
            "fts(",
            ".sum()",
            "count()",
        ]
    ),
    max_size=30,
).map("".join)
KEYS = st.one_of(
    st.sampled_from(
        [
            "select",
            "columns",
            "on_conflict",
            "order",
            "limit",
            "offset",
            "or",
            "and",
            "not.or",
            "rel.and",
            "rel.order",
            "a",
            "a->b",
        ]
    ),
    HOSTILE,
    GRAMMARISH,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(st.tuples(KEYS, st.one_of(st.none(), HOSTILE, GRAMMARISH)), max_size=6),
    rpc=st.booleans(),
)
def test_arbitrary_parameters_raise_only_parse_error(
    items: list[tuple[str, str | None]], rpc: bool
) -> None:
    try:
        q = parse_query(items, is_rpc_read=rpc)
    except ParseError as e:
        assert e.code in ("PGRST100", "PGRST103")
        assert e.status in (400, 416)
        assert isinstance(e.message, str) and isinstance(e.details, str)
    else:
        assert isinstance(q, QueryParams)
        hash(q)  # the AST is immutable all the way down


@settings(max_examples=200)
@given(raw=st.one_of(st.binary(max_size=60), st.text(max_size=60)), rpc=st.booleans())
def test_arbitrary_query_strings_raise_only_parse_error(raw: bytes | str, rpc: bool) -> None:
    try:
        parse_query_string(raw, is_rpc_read=rpc)
    except ParseError as e:
        assert e.status in (400, 416)


@settings(max_examples=200)
@given(values=st.lists(HOSTILE, max_size=4), header=st.one_of(st.none(), HOSTILE))
def test_arbitrary_headers_raise_only_parse_error(values: list[str], header: str | None) -> None:
    prefs = parse_prefer(values)
    try:
        prefs.check_strict()
        parse_range(header)
    except ParseError as e:
        assert e.code in ("PGRST122", "PGRST103")


# Round trips: render a generated AST the way a client would and parse it back.

NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda n: n not in ("count", "left", "inner", "not", "and", "or")
)
JSON_STEPS = st.lists(
    st.builds(
        JsonStep,
        st.sampled_from(["->", "->>"]),
        st.one_of(
            st.builds(JsonKey, st.from_regex(r"[a-z]{1,5}", fullmatch=True)),
            st.builds(JsonIndex, st.integers(-99, 99)),
        ),
    ),
    max_size=2,
).map(tuple)
FIELDS = st.builds(Field, NAMES, JSON_STEPS)


def render_path(path: tuple[JsonStep, ...]) -> str:
    return "".join(
        s.arrow + (s.operand.key if isinstance(s.operand, JsonKey) else str(s.operand.index))
        for s in path
    )


def render_field(fld: Field) -> str:
    return fld.name + render_path(fld.json_path)


def render_select(items: tuple[SelectItem, ...]) -> str:
    out = []
    for it in items:
        if isinstance(it, SelectField):
            text = (
                "count()"
                if it.aggregate == "count" and it.field.name == "*"
                else render_field(it.field)
                + (f"::{it.cast}" if it.cast else "")
                + (f".{it.aggregate}()" if it.aggregate else "")
            )
            text += f"::{it.aggregate_cast}" if it.aggregate_cast else ""
            out.append((f"{it.alias}:" if it.alias else "") + text)
        else:
            params = (f"!{it.hint}" if it.hint else "") + (f"!{it.join}" if it.join else "")
            head = (
                ("..." if isinstance(it, SpreadRelation) else f"{it.alias}:" if it.alias else "")
                + it.relation
                + params
            )
            out.append(f"{head}({render_select(it.children)})")
    return ",".join(out)


CASTS = st.one_of(st.none(), st.sampled_from(["int", "text", "numeric"]))
AGGS = st.sampled_from(["sum", "avg", "min", "max", "count"])
SELECT_FIELDS = st.one_of(
    st.builds(SelectField, FIELDS, st.one_of(st.none(), NAMES), CASTS),
    st.builds(
        lambda f, a, agg, c1, c2: SelectField(f, a, c1, agg, c2),
        FIELDS,
        st.one_of(st.none(), NAMES),
        AGGS,
        CASTS,
        CASTS,
    ),
    st.builds(
        lambda a, c: SelectField(Field("*"), a, None, "count", c),
        st.one_of(st.none(), NAMES),
        CASTS,
    ),
    st.just(STAR),
)
SELECT_TREES = st.recursive(
    SELECT_FIELDS,
    lambda children: st.one_of(
        st.builds(
            SelectRelation,
            NAMES,
            st.lists(children, max_size=3).map(tuple),
            st.one_of(st.none(), NAMES),
            st.one_of(st.none(), NAMES),
            st.sampled_from([None, "inner", "left"]),
        ),
        st.builds(
            SpreadRelation,
            NAMES,
            st.lists(children, max_size=3).map(tuple),
            st.one_of(st.none(), NAMES),
            st.sampled_from([None, "inner", "left"]),
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=300)
@given(items=st.lists(SELECT_TREES, max_size=4).map(tuple))
def test_select_round_trip(items: tuple[SelectItem, ...]) -> None:
    assert select(render_select(items)) == items


SAFE_VALUES = st.from_regex(r"[a-z0-9 %]{0,6}", fullmatch=True)
LOGIC_FILTERS = st.one_of(
    st.builds(
        lambda f, op, v, n: Filter(f, OpExpr(OpQuant(op, v), n)),
        FIELDS,
        st.sampled_from(["eq", "gt", "lte", "match"]),
        SAFE_VALUES,
        st.booleans(),
    ),
    st.builds(
        lambda f, vs: Filter(f, OpExpr(OpIn(vs))),
        FIELDS,
        st.lists(st.from_regex(r"[a-z0-9]{1,4}", fullmatch=True), min_size=1, max_size=3).map(
            tuple
        ),
    ),
    st.builds(
        lambda f, v: Filter(f, OpExpr(OpIs(v))),
        FIELDS,
        st.sampled_from(["null", "not_null", "true", "false", "unknown"]),
    ),
)
LOGIC_TREES = st.recursive(
    LOGIC_FILTERS,
    lambda children: st.builds(
        LogicExpr,
        st.sampled_from(["and", "or"]),
        st.lists(children, min_size=1, max_size=3).map(tuple),
        st.booleans(),
    ),
    max_leaves=10,
)


def render_logic(tree: LogicTree) -> str:
    if isinstance(tree, LogicExpr):
        inner = ",".join(render_logic(c) for c in tree.children)
        return ("not." if tree.negated else "") + f"{tree.op}({inner})"
    op = tree.expr.operation
    rendered = (
        f"{op.op}.{op.value}"
        if isinstance(op, OpQuant)
        else "in.(" + ",".join(op.values) + ")"
        if isinstance(op, OpIn)
        else f"is.{op.value}"
        if isinstance(op, OpIs)
        else "?"
    )
    return render_field(tree.field) + "." + ("not." if tree.expr.negated else "") + rendered


@settings(max_examples=300)
@given(
    op=st.sampled_from(["and", "or"]),
    negated=st.booleans(),
    children=st.lists(LOGIC_TREES, min_size=1, max_size=3).map(tuple),
)
def test_logic_round_trip(op: str, negated: bool, children: tuple[LogicTree, ...]) -> None:
    tree = LogicExpr(op, children, negated)  # type: ignore[arg-type]
    text = render_logic(tree)
    k, v = text.split("(", 1)
    assert parse_query([(k, "(" + v)]).logic == (((), tree),)


OPERATOR_WORDS = st.sampled_from(
    ["eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch", "cs", "cd",
     "ov", "sl", "sr", "nxr", "nxl", "adj", "in", "is", "isdistinct", "fts", "wfts", "not",
     "eqx", "e", ""]
)  # fmt: skip


@settings(max_examples=500)
@given(
    words=st.lists(OPERATOR_WORDS, min_size=1, max_size=3),
    seps=st.lists(st.sampled_from([".", "(any).", "(", "", ".."]), min_size=3, max_size=3),
    rest=st.one_of(HOSTILE, GRAMMARISH),
)
def test_plain_filter_fast_path_agrees_with_the_grammar(
    words: list[str], seps: list[str], rest: str
) -> None:
    from supalite.rest.parse import _filter_expr, _filter_expr_parsed

    v = "".join(w + s for w, s in zip(words, seps, strict=False)) + rest
    if "\x00" in v or any("\ud800" <= ch <= "\udfff" for ch in v):
        return  # refused before filters are parsed
    outcomes = []
    for parse in (_filter_expr, _filter_expr_parsed):
        try:
            outcomes.append(parse(v))
        except ParseError as e:
            outcomes.append(e.to_dict())
    assert outcomes[0] == outcomes[1]
