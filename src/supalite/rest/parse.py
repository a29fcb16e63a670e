"""Query string and header parsing for the Data API: PostgREST's ``ApiRequest`` stage.

Turns ``?select=...&col=op.value&order=...`` plus the ``Prefer`` and ``Range`` headers into a
typed, immutable AST. Pure: no schema cache, no SQL. The planner resolves names and renders SQL.

The grammar is PostgREST's (``ApiRequest/QueryParams.hs``), hand-translated so that errors read
the same: PGRST100 with ``message = '"failed to parse filter (val)" (line 1, column 1)'`` and a
Parsec-style ``details`` (``unexpected "v" expecting "not" or operator (eq, gt, ...)``). The error
model below is a small imitation of Parsec's (consuming input forgets earlier errors, ``try``
keeps the error of what it backtracked over, the furthest error wins, labels replace
expectations), which is what makes the column and the "expecting ..." list match PostgREST's.

PostgREST behaviours kept on purpose, because clients may rely on them: only spaces and tabs are
blanks; identifiers may contain spaces (``select=first name``); on an RPC read, a value that
starts like an operator but fails (``not.sure``, ``in.x``, ``is.maybe``) is an error rather
than an argument, and an argument's name drops any embed/JSON path (``x.y=1`` is ``y``);
``split_query_string`` splits on ``&`` and ``;``; ``Range-Unit`` is not checked.

Deliberate differences from PostgREST (each is stricter or fixes a PostgREST oddity):

* Every parameter must be consumed to its end. PostgREST ignores trailing garbage in several
  places (``select=id)x``, ``a=in.(1)x``, ``a=is.nullx``, filter keys like ``a[]``); we reject it.
* ``like``/``ilike`` values (also with ``(any)``/``(all)``) already have ``*`` replaced by ``%``
  in the AST; PostgREST does that while rendering SQL. ``match``/``imatch`` values are untouched.
* ``in.()`` is an empty tuple; ``in.("")`` is ``("",)`` (PostgREST conflates both into "empty").
* A JSON array index may also be followed by ``)`` (``order=rel(data->0)``); PostgREST would read
  ``0`` as an object key there.
* ``rel!leftover(...)`` is a hint named ``leftover``: ``left``/``inner`` must be the whole name.
* A second ``::cast`` is only accepted after an aggregate (``col.sum()::int``).
* ``limit``/``offset`` values that are not plain integers are ignored (as PostgREST does), a
  negative ``offset`` counts as 0, a negative ``limit`` is PGRST103 on any embed level, and
  ``limit=0`` works with any offset.
* NUL bytes, lone surrogates and invalid UTF-8 after percent-decoding are PGRST100, and nesting
  of embeds or logic trees deeper than ``MAX_DEPTH`` is PGRST100.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, Literal, NoReturn, TypeAlias, TypeVar
from urllib.parse import quote, unquote_to_bytes

__all__ = [
    "MAX_DEPTH",
    "Aggregate",
    "EmbedPath",
    "Field",
    "Filter",
    "JsonIndex",
    "JsonKey",
    "JsonPath",
    "JsonStep",
    "LogicExpr",
    "LogicTree",
    "OpExpr",
    "OpFts",
    "OpIn",
    "OpIs",
    "OpIsDistinct",
    "OpQuant",
    "OpSimple",
    "Operation",
    "OrderTerm",
    "ParseError",
    "Preferences",
    "QueryParams",
    "RowRange",
    "SelectField",
    "SelectItem",
    "SelectRelation",
    "SpreadRelation",
    "parse_prefer",
    "parse_query",
    "parse_query_string",
    "parse_range",
    "preference_applied",
    "split_query_string",
    "top_level_range",
]

MAX_DEPTH = 32
"""Deepest nesting of embeds (``a(b(c(...)))``) or logic trees (``or(and(...))``) accepted."""

_MAX_ECHO = 1000  # characters of the offending parameter repeated in an error message
_INT64_MAX = 2**63 - 1


class ParseError(Exception):
    """A request that cannot be parsed; carries PostgREST's error fields."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 400,
        details: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.details = details
        self.hint = hint

    def to_dict(self) -> dict[str, str | None]:
        return {
            "code": self.code,
            "message": self.message,
            "details": self.details,
            "hint": self.hint,
        }


# --------------------------------------------------------------------------------------------
# AST


@dataclass(frozen=True, slots=True)
class JsonKey:
    key: str


@dataclass(frozen=True, slots=True)
class JsonIndex:
    index: int


@dataclass(frozen=True, slots=True)
class JsonStep:
    arrow: Literal["->", "->>"]
    operand: JsonKey | JsonIndex


JsonPath: TypeAlias = tuple[JsonStep, ...]
EmbedPath: TypeAlias = tuple[str, ...]
Aggregate: TypeAlias = Literal["count", "sum", "avg", "min", "max"]
JoinType: TypeAlias = Literal["inner", "left"]


@dataclass(frozen=True, slots=True)
class Field:
    """A column, optionally followed by ``->``/``->>`` steps. ``*`` is ``Field("*")``."""

    name: str
    json_path: JsonPath = ()


@dataclass(frozen=True, slots=True)
class SelectField:
    """``alias:col->a::cast``, ``col.sum()::int`` or ``count()`` (field ``*``)."""

    field: Field
    alias: str | None = None
    cast: str | None = None
    aggregate: Aggregate | None = None
    aggregate_cast: str | None = None


@dataclass(frozen=True, slots=True)
class SelectRelation:
    """``alias:rel!hint!inner(children)``."""

    relation: str
    children: tuple[SelectItem, ...] = ()
    alias: str | None = None
    hint: str | None = None
    join: JoinType | None = None


@dataclass(frozen=True, slots=True)
class SpreadRelation:
    """``...rel!hint!inner(children)`` (never aliased)."""

    relation: str
    children: tuple[SelectItem, ...] = ()
    hint: str | None = None
    join: JoinType | None = None


SelectItem: TypeAlias = SelectField | SelectRelation | SpreadRelation

SimpleOperator: TypeAlias = Literal["neq", "cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj"]
QuantOperator: TypeAlias = Literal[
    "eq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch"
]
FtsOperator: TypeAlias = Literal["fts", "plfts", "phfts", "wfts"]
IsValue: TypeAlias = Literal["null", "not_null", "true", "false", "unknown"]


@dataclass(frozen=True, slots=True)
class OpSimple:
    op: SimpleOperator
    value: str


@dataclass(frozen=True, slots=True)
class OpQuant:
    """eq/gt/.../like/ilike/match/imatch, optionally ``(any)``/``(all)``.

    For like/ilike ``value`` already has ``*`` replaced by ``%``.
    """

    op: QuantOperator
    value: str
    quantifier: Literal["any", "all"] | None = None


@dataclass(frozen=True, slots=True)
class OpIn:
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OpIs:
    value: IsValue


@dataclass(frozen=True, slots=True)
class OpIsDistinct:
    value: str


@dataclass(frozen=True, slots=True)
class OpFts:
    op: FtsOperator
    value: str
    language: str | None = None


Operation: TypeAlias = OpSimple | OpQuant | OpIn | OpIs | OpIsDistinct | OpFts


@dataclass(frozen=True, slots=True)
class OpExpr:
    operation: Operation
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Filter:
    field: Field
    expr: OpExpr


@dataclass(frozen=True, slots=True)
class LogicExpr:
    """``[not.]and(...)`` / ``[not.]or(...)``; children are filters or nested expressions."""

    op: Literal["and", "or"]
    children: tuple[LogicTree, ...]
    negated: bool = False


LogicTree: TypeAlias = LogicExpr | Filter


@dataclass(frozen=True, slots=True)
class OrderTerm:
    """``col->k.desc.nullslast``; ``relation`` is set for ``rel(col).desc`` (to-one only)."""

    field: Field
    direction: Literal["asc", "desc"] | None = None
    nulls: Literal["first", "last"] | None = None
    relation: str | None = None


@dataclass(frozen=True, slots=True)
class RowRange:
    """Rows ``offset .. offset+limit-1``; ``limit=None`` means no upper bound."""

    offset: int = 0
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class QueryParams:
    """Everything the query string says. Embed paths are ``()`` for the top-level resource."""

    select: tuple[SelectItem, ...]
    filters: tuple[tuple[EmbedPath, Filter], ...] = ()
    logic: tuple[tuple[EmbedPath, LogicTree], ...] = ()
    order: tuple[tuple[EmbedPath, tuple[OrderTerm, ...]], ...] = ()
    ranges: tuple[tuple[EmbedPath, RowRange], ...] = ()
    columns: tuple[str, ...] | None = None
    on_conflict: tuple[str, ...] | None = None
    rpc_args: tuple[tuple[str, str], ...] = ()
    items: tuple[tuple[str, str | None], ...] = dataclass_field(
        default=(), compare=False, repr=False
    )
    """The decoded parameters as they came, for ``canonical``."""

    @property
    def canonical(self) -> str:
        """The query string sorted by key, as PostgREST echoes it in ``Content-Location``.
        Computed on demand: quoting every parameter costs more than the rest of a parse."""
        return _canonical(self.items)

    def range_for(self, path: EmbedPath = ()) -> RowRange:
        for p, r in self.ranges:
            if p == path:
                return r
        return RowRange()

    @property
    def root_filters(self) -> tuple[Filter, ...]:
        """Filters on the resource itself: what UPDATE/DELETE use."""
        return tuple(f for p, f in self.filters if not p)


# --------------------------------------------------------------------------------------------
# Haskell `show`, so that messages quote text exactly as PostgREST's do

_ASCII_NAMES = (
    "NUL",
    "SOH",
    "STX",
    "ETX",
    "EOT",
    "ENQ",
    "ACK",
    "BEL",
    "BS",
    "HT",
    "LF",
    "VT",
    "FF",
    "CR",
    "SO",
    "SI",
    "DLE",
    "DC1",
    "DC2",
    "DC3",
    "DC4",
    "NAK",
    "SYN",
    "ETB",
    "CAN",
    "EM",
    "SUB",
    "ESC",
    "FS",
    "GS",
    "RS",
    "US",
)
_SHORT_ESCAPES = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r"}


def _hs_escape(ch: str) -> str:
    o = ord(ch)
    if 32 <= o < 127:
        return "\\\\" if ch == "\\" else ch
    if o == 127:
        return "\\DEL"
    if o > 127:
        return f"\\{o}"
    return _SHORT_ESCAPES.get(o) or "\\" + _ASCII_NAMES[o]


@functools.lru_cache(maxsize=4096)  # hot: failed alternatives format their next char
def _hs_str(s: str) -> str:
    out = ['"']
    for idx, ch in enumerate(s):
        if ch == '"':
            out.append('\\"')
            continue
        esc = _hs_escape(ch)
        out.append(esc)
        nxt = s[idx + 1 : idx + 2]
        # Haskell inserts `\&` where the next character would extend the escape.
        if (len(esc) > 1 and esc[1:].isdigit() and nxt.isdigit() and nxt.isascii()) or (
            esc == "\\SO" and nxt == "H"
        ):
            out.append("\\&")
    out.append('"')
    return "".join(out)


def _hs_char(ch: str) -> str:
    return "'\\''" if ch == "'" else f"'{_hs_escape(ch)}'"


# --------------------------------------------------------------------------------------------
# Cursor with a Parsec-like error model

_SYS, _UNEXPECT, _EXPECT = 0, 1, 2  # Parsec's SysUnExpect, UnExpect, Expect, in display order
_Msg: TypeAlias = tuple[int, str]
T = TypeVar("T")

_FIELD_LABEL = "field name (* or [a..z0..9_$])"


class _Fail(Exception):
    """The current alternative did not match; the cursor holds the error."""


class _TooDeep(Exception):
    def __init__(self, pos: int) -> None:
        super().__init__(pos)
        self.pos = pos


class _Cursor:
    __slots__ = ("emsgs", "epos", "i", "resets", "s", "source")

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.s = text
        self.i = 0
        self.epos = -1
        self.emsgs: list[_Msg] = []
        self.resets = 0

    # -- errors --------------------------------------------------------------------------
    def note(self, pos: int, *msgs: _Msg) -> None:
        """Record what went wrong at ``pos``; only the furthest position is kept."""
        if pos > self.epos:
            self.epos, self.emsgs = pos, list(msgs)
        elif pos == self.epos:
            self.emsgs.extend(msgs)

    def sys_at(self, pos: int) -> _Msg:
        return (_SYS, _hs_str(self.s[pos]) if pos < len(self.s) else "")

    def fail(self, *expected: str) -> NoReturn:
        self.note(self.i, self.sys_at(self.i), *((_EXPECT, e) for e in expected))
        raise _Fail

    def error(self) -> ParseError:
        return self._error_at(max(self.epos, 0), _show_messages(self.emsgs))

    def _error_at(self, pos: int, details: str) -> ParseError:
        before = self.s[:pos]
        line = before.count("\n") + 1
        col = 1
        for ch in before[before.rfind("\n") + 1 :]:
            col = col + 8 - (col - 1) % 8 if ch == "\t" else col + 1  # Parsec's tab stops
        src = self.source
        if len(src) > _MAX_ECHO:
            src = src[:_MAX_ECHO] + "..."
        return ParseError(
            "PGRST100", f"{_hs_str(src)} (line {line}, column {col})", details=details
        )

    # -- combinators ---------------------------------------------------------------------
    def advance(self, to: int) -> None:
        """Consume input up to ``to``. As in Parsec, consuming forgets earlier errors."""
        if to != self.i:
            self.i, self.epos, self.emsgs = to, -1, []
            self.resets += 1

    def attempt(self, fn: Callable[[], T]) -> T:
        """Parsec's ``try``: on failure rewind, keeping both the old and the new errors."""
        start, resets, saved_pos, saved = self.i, self.resets, self.epos, list(self.emsgs)
        try:
            return fn()
        except _Fail:
            self.i = start
            if self.resets != resets:  # `fn` consumed and so forgot the errors from before
                pos, msgs = self.epos, self.emsgs
                self.epos, self.emsgs = saved_pos, saved
                self.note(pos, *msgs)
            raise

    def alt(self, *fns: Callable[[], T]) -> T:
        """Parsec's ``<|>``: the next alternative runs only if the previous consumed nothing."""
        start = self.i
        for fn in fns:
            try:
                return fn()
            except _Fail:
                if self.i != start:
                    raise
        raise _Fail

    def label(self, name: str, fn: Callable[[], T]) -> T:
        """Parsec's ``<?>``: if ``fn`` consumed nothing, its expectations become ``name``."""
        start = self.i
        base_pos, base_n = self.epos, len(self.emsgs)
        try:
            result = fn()
        except _Fail:
            if self.i == start:
                self._relabel(name, base_pos, base_n)
            raise
        if self.i == start:
            self._relabel(name, base_pos, base_n)
        return result

    def _relabel(self, name: str, base_pos: int, base_n: int) -> None:
        keep, new = (
            (self.emsgs[:base_n], self.emsgs[base_n:])
            if self.epos == base_pos
            else ([], self.emsgs)
        )
        if new:
            self.emsgs = keep + [m for m in new if m[0] != _EXPECT] + [(_EXPECT, name)]

    # -- primitives ----------------------------------------------------------------------
    def char(self, ch: str) -> str:
        if self.s.startswith(ch, self.i):
            self.advance(self.i + 1)
            return ch
        self.fail(_hs_str(ch))

    def lookahead(self, lit: str) -> None:
        """``try (lookAhead (string lit))``; Parsec reports a mismatch at the start."""
        s, i = self.s, self.i
        if s.startswith(lit, i):
            return
        k = 0
        while i + k < len(s) and s[i + k] == lit[k]:
            k += 1
        self.note(i, self.sys_at(i + k), (_EXPECT, _hs_str(lit)))
        raise _Fail

    def string(self, lit: str) -> str:
        """``try (string lit)``."""
        self.lookahead(lit)
        self.advance(self.i + len(lit))
        return lit

    def eof(self) -> None:
        if self.i < len(self.s):
            self.note(self.i, (_UNEXPECT, _hs_char(self.s[self.i])), (_EXPECT, "end of input"))
            raise _Fail

    def run(self, pattern: re.Pattern[str]) -> str:
        """Consume a regex run (``many (noneOf ...)``); the stop is recorded as Parsec does."""
        m = pattern.match(self.s, self.i)
        assert m is not None  # every pattern passed here can match the empty string
        self.advance(m.end())
        self.note(self.i, self.sys_at(self.i))
        return m.group()


def _show_messages(msgs: list[_Msg]) -> str:
    """Parsec's ``showErrorMessages``, with newlines turned into spaces as PostgREST does."""

    def many(prefix: str, items: list[str]) -> str:
        items = list(dict.fromkeys(x for x in items if x))
        if not items:
            return ""
        body = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
        return f"{prefix} {body}"

    sys = [t for k, t in msgs if k == _SYS]
    unexpected = [t for k, t in msgs if k == _UNEXPECT]
    expected = [t for k, t in msgs if k == _EXPECT]
    parts = []
    if sys and not unexpected:
        parts.append("unexpected " + (sys[0] or "end of input"))
    parts += [many("unexpected", unexpected), many("expecting", expected)]
    return " ".join(p for p in parts if p) or "unknown parse error"


def _run(source: str, text: str, fn: Callable[[_Cursor], T]) -> T:
    """Parse ``text`` with ``fn``. Memoised: the same select/order/filter strings arrive again
    and again, and the results are immutable (failures raise, and are not remembered)."""
    result: T = _run_cached(source, text, fn)
    return result


@functools.lru_cache(maxsize=2048)
def _run_cached(source: str, text: str, fn: Callable[[_Cursor], Any]) -> Any:
    c = _Cursor(source, text)
    try:
        return fn(c)
    except _Fail:
        raise c.error() from None
    except _TooDeep as e:
        raise c._error_at(e.pos, f"maximum nesting depth ({MAX_DEPTH}) exceeded") from None


# --------------------------------------------------------------------------------------------
# Grammar (names in comments are PostgREST's parsers)

_WS = re.compile(r"[ \t]*")
_IDENT_ASCII = re.compile(r"[A-Za-z0-9_ $]+")
_QUOTED_BODY = re.compile(r'(?:[^\\"]|\\.)*', re.S)
_UNESCAPE = re.compile(r"\\(.)", re.S)
_JSON_KEY_RUN = re.compile(r"[^(\-:.,>)]*")
_DIGITS = re.compile(r"[0-9]*")
_NOT_COMMA_PAREN = re.compile(r"[^,)]*")
_NOT_BRACES = re.compile(r"[^{}]*")
_BACKSLASH = _hs_str("\\")


def _ws(c: _Cursor) -> None:
    c.run(_WS)


def _delim(c: _Cursor) -> str:
    return c.label("delimiter (.)", lambda: c.char("."))


def _identifier(c: _Cursor) -> str:
    """pIdentifier: letters, digits, ``_``, ``$`` and spaces, stripped."""
    s, start, i = c.s, c.i, c.i
    while i < len(s):
        m = _IDENT_ASCII.match(s, i)
        if m:
            i = m.end()
        elif s[i].isalpha():  # Haskell's isAlpha admits any Unicode letter
            i += 1
        else:
            break
    c.advance(i)
    c.note(i, c.sys_at(i), (_EXPECT, "letter"), (_EXPECT, "digit"))
    if i == start:
        raise _Fail
    return s[start:i].strip(" ")


def _dash(c: _Cursor) -> bool:
    """``try (char '-' >> notFollowedBy (char '>'))``: a dash inside a name, not an arrow."""
    s, i = c.s, c.i
    if not s.startswith("-", i):
        c.note(i, c.sys_at(i), (_EXPECT, '"-"'))
        return False
    if s.startswith(">", i + 1):
        c.note(i + 2, (_UNEXPECT, "'>'"))
        return False
    c.advance(i + 1)
    return True


def _sep_by_dash(c: _Cursor, part: Callable[[_Cursor], str]) -> str:
    parts = [part(c)]
    while _dash(c):
        parts.append(part(c))
    return "-".join(parts)


def _quoted(c: _Cursor) -> str:
    """pQuotedValue: ``"..."`` with ``\\x`` meaning ``x``."""
    c.char('"')
    body = _QUOTED_BODY.match(c.s, c.i)
    assert body is not None
    c.advance(body.end())
    if c.s.startswith("\\", c.i):  # a backslash with nothing after it
        c.advance(c.i + 1)
        c.fail()
    c.note(c.i, c.sys_at(c.i), (_EXPECT, _BACKSLASH))
    c.char('"')
    return _UNESCAPE.sub(lambda m: m.group(1), body.group())


def _field_name(c: _Cursor) -> str:
    return c.label(
        _FIELD_LABEL, lambda: c.alt(lambda: _quoted(c), lambda: _sep_by_dash(c, _identifier))
    )


def _json_key_ident(c: _Cursor) -> str:
    start = c.i
    text = c.run(_JSON_KEY_RUN)
    if c.i == start:
        raise _Fail
    return text.strip()


def _json_index(c: _Cursor) -> JsonKey | JsonIndex:
    negative = c.s.startswith("-", c.i)
    if negative:
        c.advance(c.i + 1)
    else:
        c.note(c.i, c.sys_at(c.i), (_EXPECT, '"-"'))
    start = c.i
    digits = _DIGITS.match(c.s, c.i)
    assert digits is not None
    c.advance(digits.end())
    c.note(c.i, c.sys_at(c.i), (_EXPECT, "digit"))
    if c.i == start:
        raise _Fail
    c.alt(*(lambda lit=lit: c.lookahead(lit) for lit in ("->", "::", ".", ",", ")")), c.eof)
    if c.i - start > 18:  # no such array; read it as an object key, as PG would find nothing
        raise _Fail
    value = int(digits.group())
    return JsonIndex(-value if negative else value)


def _json_key(c: _Cursor) -> JsonKey | JsonIndex:
    return JsonKey(
        c.label(
            "any non reserved character different from: .,>()",
            lambda: c.alt(lambda: _quoted(c), lambda: _sep_by_dash(c, _json_key_ident)),
        )
    )


def _json_path(c: _Cursor) -> JsonPath:
    steps: list[JsonStep] = []
    while True:
        try:
            arrow = c.alt(lambda: c.string("->>"), lambda: c.string("->"))
        except _Fail:
            return tuple(steps)
        operand = c.alt(
            lambda: c.attempt(lambda: _json_index(c)), lambda: c.attempt(lambda: _json_key(c))
        )
        steps.append(JsonStep("->>" if arrow == "->>" else "->", operand))


def _field(c: _Cursor) -> Field:
    """pField, with surrounding blanks."""
    _ws(c)
    name = _field_name(c)
    path = _json_path(c)
    _ws(c)
    return Field(name, path)


def _optional(c: _Cursor, fn: Callable[[], T]) -> T | None:
    return c.alt(fn, lambda: None)


def _sep_by(
    c: _Cursor, item: Callable[[], T], sep: Callable[[], object], *, at_least_one: bool
) -> list[T]:
    out: list[T] = [item()] if at_least_one else c.alt(lambda: [item()], list)
    if not out:
        return out
    while True:
        start = c.i
        try:
            sep()
        except _Fail:
            if c.i != start:
                raise
            return out
        out.append(item())


# -- select ----------------------------------------------------------------------------------


def _alias(c: _Cursor) -> str | None:
    """``optionMaybe (try (pFieldName <* aliasSeparator))``."""

    def p() -> str:
        name = _field_name(c)
        c.char(":")
        if c.s.startswith(":", c.i):
            c.note(c.i + 1, (_UNEXPECT, "':'"))
            raise _Fail
        return name

    return _optional(c, lambda: c.attempt(p))


def _embed_params(c: _Cursor) -> tuple[str | None, JoinType | None]:
    hint: str | None = None
    join: JoinType | None = None

    def param() -> tuple[str, str]:
        c.char("!")
        start = c.i
        name = _field_name(c)
        raw = c.s[start : c.i]
        return ("join", raw) if raw in ("left", "inner") else ("hint", name)

    for _ in range(2):
        got = _optional(c, param)
        if got is None:
            break
        kind, value = got
        if kind == "join" and join is None:
            join = "inner" if value == "inner" else "left"
        elif kind == "hint" and hint is None:
            hint = value
    return hint, join


def _select_end(c: _Cursor) -> None:
    c.alt(lambda: c.lookahead(")"), lambda: c.lookahead(","), c.eof)


def _cast(c: _Cursor) -> str | None:
    try:
        c.string("::")
    except _Fail:
        return None
    return _identifier(c)


def _select_field(c: _Cursor) -> SelectField:
    """pFieldSelect."""

    def star() -> SelectField:
        c.char("*")
        _select_end(c)
        return SelectField(Field("*"))

    def count() -> SelectField:
        alias = _alias(c)
        c.string("count()")
        agg_cast = _cast(c)
        _select_end(c)
        return SelectField(Field("*"), alias=alias, aggregate="count", aggregate_cast=agg_cast)

    def aggregate() -> Aggregate:
        c.char(".")
        name = _pick(c, _AGGREGATES)
        c.string("()")
        return name

    def plain() -> SelectField:
        alias = _alias(c)
        fld = _field(c)
        cast = _cast(c)
        agg = _optional(c, lambda: c.attempt(aggregate))
        agg_cast = _cast(c) if agg else None
        _select_end(c)
        return SelectField(fld, alias=alias, cast=cast, aggregate=agg, aggregate_cast=agg_cast)

    _ws(c)
    item = c.alt(lambda: c.attempt(star), lambda: c.attempt(count), plain)
    _ws(c)
    return item


def _select_tree(c: _Cursor, depth: int) -> SelectItem:
    def children() -> tuple[SelectItem, ...]:
        if depth >= MAX_DEPTH:
            raise _TooDeep(c.i)
        c.char("(")
        items = _select_forest(c, depth + 1)
        c.char(")")
        return items

    def spread_header() -> tuple[str, str | None, JoinType | None]:
        _ws(c)
        c.string("...")
        name = _field_name(c)
        hint, join = _embed_params(c)
        c.lookahead("(")
        return name, hint, join

    def relation_header() -> tuple[str | None, str, str | None, JoinType | None]:
        _ws(c)
        alias = _alias(c)
        name = _field_name(c)
        if name == "count":  # `count()` is the aggregate, never an embed
            raise _Fail
        hint, join = _embed_params(c)
        c.lookahead("(")
        return alias, name, hint, join

    def spread() -> SelectItem:
        name, hint, join = c.attempt(spread_header)
        return SpreadRelation(name, children(), hint, join)

    def relation() -> SelectItem:
        alias, name, hint, join = c.attempt(relation_header)
        return SelectRelation(name, children(), alias, hint, join)

    def field() -> SelectItem:
        return _select_field(c)

    return c.alt(spread, relation, field)


def _select_forest(c: _Cursor, depth: int) -> tuple[SelectItem, ...]:
    def sep() -> None:
        _ws(c)
        c.char(",")
        _ws(c)

    return tuple(_sep_by(c, lambda: _select_tree(c, depth), sep, at_least_one=False))


# -- filters ---------------------------------------------------------------------------------

_AGGREGATES: tuple[Aggregate, ...] = ("sum", "avg", "count", "max", "min")
_QUANTIFIERS: tuple[Literal["any", "all"], ...] = ("any", "all")
_QUANT_OPS: tuple[QuantOperator, ...] = (
    "eq",
    "gte",
    "gt",
    "lte",
    "lt",
    "like",
    "ilike",
    "match",
    "imatch",
)
_SIMPLE_OPS: tuple[SimpleOperator, ...] = ("neq", "cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj")
_FTS_OPS: tuple[FtsOperator, ...] = ("fts", "plfts", "phfts", "wfts")
_IS_VALUES: tuple[IsValue, ...] = ("null", "not_null", "true", "false", "unknown")


def _not_followed_by_value_char(c: _Cursor) -> None:
    """``notFollowedBy (noneOf ",)")``: a quoted value must end its element."""
    if c.i < len(c.s) and c.s[c.i] not in ",)":
        c.note(c.i + 1, (_UNEXPECT, _hs_char(c.s[c.i])))
        raise _Fail
    c.note(c.i, c.sys_at(c.i))


def _list_element(c: _Cursor) -> tuple[str, bool]:
    def quoted() -> tuple[str, bool]:
        value = _quoted(c)
        _not_followed_by_value_char(c)
        return value, True

    return c.alt(lambda: c.attempt(quoted), lambda: (c.run(_NOT_COMMA_PAREN), False))


def _list_value(c: _Cursor) -> tuple[str, ...]:
    """pListVal: ``(a,"b,c",d)``."""
    _ws(c)
    c.char("(")
    _ws(c)
    elems = _sep_by(c, lambda: _list_element(c), lambda: c.char(","), at_least_one=True)
    _ws(c)
    c.char(")")
    _ws(c)
    if elems == [("", False)]:
        return ()
    return tuple(v for v, _ in elems)


def _rest_value(c: _Cursor) -> str:
    """pSingleVal: the rest of the parameter, verbatim."""
    value = c.s[c.i :]
    c.advance(len(c.s))
    return value


def _logic_value(c: _Cursor) -> str:
    """pLogicSingleVal: ``"quoted"``, ``{pg,array}`` or anything up to ``,`` or ``)``."""

    def quoted() -> str:
        value = _quoted(c)
        _not_followed_by_value_char(c)
        return value

    def pg_array() -> str:
        c.string("{")
        body = c.run(_NOT_BRACES)
        c.string("}")
        return "{" + body + "}"

    return c.alt(
        lambda: c.attempt(quoted), lambda: c.attempt(pg_array), lambda: c.run(_NOT_COMMA_PAREN)
    )


def _is_value(c: _Cursor) -> IsValue:
    def word(w: IsValue) -> Callable[[], IsValue]:
        def p() -> IsValue:
            for ch in w:  # Parsec's ciString: each letter lower- or upper-case
                if c.s.startswith(ch, c.i) or c.s.startswith(ch.upper(), c.i):
                    c.advance(c.i + 1)
                else:
                    c.fail(_hs_str(ch), _hs_str(ch.upper()))
            return w

        return lambda: c.attempt(p)

    return c.label(
        "isVal: (null, not_null, true, false, unknown)",
        lambda: c.alt(*(word(w) for w in _IS_VALUES)),
    )


def _op_expr(c: _Cursor, value: Callable[[_Cursor], str]) -> OpExpr:
    """pOpExpr: ``[not.]op[(modifier)].value``."""

    def keyword(word: str) -> None:
        c.attempt(lambda: (c.string(word), _delim(c)))

    def p_in() -> Operation:
        keyword("in")
        return OpIn(_list_value(c))

    def p_is() -> Operation:
        keyword("is")
        return OpIs(_is_value(c))

    def p_isdistinct() -> Operation:
        keyword("isdistinct")
        return OpIsDistinct(value(c))

    def p_fts() -> Operation:
        op = _pick(c, _FTS_OPS)
        lang = _optional(
            c, lambda: c.attempt(lambda: (c.char("("), _identifier(c), c.char(")"))[1])
        )
        _delim(c)
        return OpFts(op, value(c), lang)

    def p_simple() -> Operation:
        op = c.label("unknown single value operator", lambda: _pick(c, _SIMPLE_OPS))
        _delim(c)
        return OpSimple(op, value(c))

    def p_quant() -> Operation:
        op = c.label("unknown single value operator", lambda: _pick(c, _QUANT_OPS))
        quant = _optional(
            c, lambda: c.attempt(lambda: (c.char("("), _pick(c, _QUANTIFIERS), c.char(")"))[1])
        )
        _delim(c)
        v = value(c)
        if op in ("like", "ilike"):
            v = v.replace("*", "%")
        return OpQuant(op, v, quant)

    negated = c.alt(lambda: c.attempt(lambda: (c.string("not"), _delim(c), True)[2]), lambda: False)
    operation = c.label(
        "operator (eq, gt, ...)",
        lambda: c.alt(
            p_in,
            p_is,
            p_isdistinct,
            lambda: c.attempt(p_fts),
            lambda: c.attempt(p_simple),
            lambda: c.attempt(p_quant),
        ),
    )
    return OpExpr(operation, negated)


_L = TypeVar("_L", bound=str)


def _pick(c: _Cursor, words: tuple[_L, ...]) -> _L:
    """First of ``words`` (each a ``try (string w)``) present at the cursor."""
    found = c.alt(*(lambda w=w: c.string(w) for w in words))
    return next(w for w in words if w == found)


# -- logic trees -----------------------------------------------------------------------------


def _logic_tree(c: _Cursor, depth: int) -> LogicTree:
    """pLogicTree: a filter ``col.op.val`` or ``[not.]and|or(tree,...)``."""

    def statement() -> LogicTree:
        fld = _field(c)
        _delim(c)
        return Filter(fld, _op_expr(c, _logic_value))

    def expression() -> LogicTree:
        negated = c.label(
            "negation operator (not)",
            lambda: c.alt(
                lambda: c.attempt(lambda: (c.string("not"), _delim(c), True)[2]), lambda: False
            ),
        )
        op = c.label(
            "logic operator (and, or)",
            lambda: c.alt(lambda: c.string("and"), lambda: c.string("or")),
        )
        if depth >= MAX_DEPTH:
            raise _TooDeep(c.i)

        def sep() -> None:
            _ws(c)
            c.char(",")
            _ws(c)

        _ws(c)
        c.char("(")
        _ws(c)
        children = _sep_by(c, lambda: _logic_tree(c, depth + 1), sep, at_least_one=True)
        _ws(c)
        c.char(")")
        _ws(c)
        return LogicExpr("and" if op == "and" else "or", tuple(children), negated)

    return c.alt(lambda: c.attempt(statement), expression)


# -- order -----------------------------------------------------------------------------------


def _order(c: _Cursor) -> tuple[OrderTerm, ...]:
    """pOrder: ``col[.asc|.desc][.nullsfirst|.nullslast]`` or ``rel(col)...``, comma-separated."""

    def end() -> None:
        c.alt(lambda: c.lookahead(","), c.eof)

    def tail() -> tuple[Literal["asc", "desc"] | None, Literal["first", "last"] | None]:
        def word(w: str) -> Callable[[], str]:
            return lambda: c.attempt(lambda: (_delim(c), c.string(w))[1])

        direction = _optional(c, lambda: c.alt(word("asc"), word("desc")))

        def with_nulls() -> str | None:
            nulls = _optional(c, lambda: c.alt(word("nullsfirst"), word("nullslast")))
            end()
            return nulls

        def without_nulls() -> str | None:
            end()
            return None

        nulls = c.alt(with_nulls, without_nulls)
        return (
            None if direction is None else "asc" if direction == "asc" else "desc",
            None if nulls is None else "first" if nulls == "nullsfirst" else "last",
        )

    def relation_term() -> OrderTerm:
        name = _field_name(c)
        c.char("(")
        fld = _field(c)
        c.char(")")
        direction, nulls = tail()
        return OrderTerm(fld, direction, nulls, relation=name)

    def term() -> OrderTerm:
        fld = _field(c)
        direction, nulls = tail()
        return OrderTerm(fld, direction, nulls)

    def item() -> OrderTerm:
        _ws(c)
        t = c.alt(lambda: c.attempt(relation_term), term)
        _ws(c)
        return t

    terms = _sep_by(c, item, lambda: c.char(","), at_least_one=True)
    c.eof()
    return tuple(terms)


# -- keys and column lists -------------------------------------------------------------------


def _tree_path(c: _Cursor) -> tuple[EmbedPath, Field]:
    """pTreePath: ``rel.sub.col->json`` into (("rel", "sub"), Field("col", ...))."""
    names = _sep_by(c, lambda: _field_name(c), lambda: _delim(c), at_least_one=True)
    path = _json_path(c)
    c.eof()
    return tuple(names[:-1]), Field(names[-1], path)


def _logic_path(c: _Cursor) -> tuple[EmbedPath, str]:
    """pLogicPath: ``rel.not.or`` into (("rel",), "not.or")."""
    names = _sep_by(c, lambda: _field_name(c), lambda: _delim(c), at_least_one=True)
    c.eof()
    op = names[-1]
    embed = tuple(n for n in names[:-1] if n != "not")
    return embed, ("not." + op if "not" in names[:-1] else op)


def _columns(c: _Cursor) -> tuple[str, ...]:
    """pColumns: ``a, "b c"`` (``columns=`` and ``on_conflict=``)."""

    def sep() -> None:
        _ws(c)
        c.char(",")
        _ws(c)

    names = _sep_by(c, lambda: _field_name(c), sep, at_least_one=True)
    c.eof()
    return tuple(dict.fromkeys(names))


# --------------------------------------------------------------------------------------------
# The query string

_RESERVED = frozenset({"select", "columns", "on_conflict"})
_RESERVED_EMBEDDABLE = frozenset({"order", "limit", "offset", "and", "or"})
# Keys (or last words of keys) that are never a column filter.
RESERVED_KEYS = _RESERVED | _RESERVED_EMBEDDABLE
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")
_INTEGER = re.compile(r"[ \t\n\r\f\v]*(-?)([0-9]+)[ \t\n\r\f\v]*")
_NEGATIVE_LIMIT = "Limit should be greater than or equal to zero."
_LOWER_GT_UPPER = (
    "The lower boundary must be lower than or equal to the upper boundary in the Range header."
)


def _range_error(details: str) -> ParseError:
    return ParseError("PGRST103", "Requested range not satisfiable", status=416, details=details)


def _reject_bad_chars(what: str, text: str) -> None:
    """NUL and lone surrogates can never reach PostgreSQL; refuse them up front."""
    m = _BAD_CHAR.search(text)
    if m:
        c = _Cursor(f"failed to parse query parameter {what} ({text})", text)
        c.i = m.start()
        c.note(c.i, c.sys_at(c.i))
        raise c.error()


def last_word(key: str) -> str:
    """The last dot-separated word of a parameter name (`books.order` → `order`)."""
    return key.rsplit(".", 1)[-1]


def _read_int(value: str) -> int | None:
    """Haskell's ``readMaybe`` for the forms clients send; anything else is ignored."""
    m = _INTEGER.fullmatch(value)
    if not m:
        return None
    n = _INT64_MAX if len(m.group(2)) > 18 else int(m.group(2))
    return -n if m.group(1) else n


def _canonical(items: Sequence[tuple[str, str | None]]) -> str:
    """``urlEncodeVars . sortOn fst``: sorted by key, repeated keys joined with commas."""
    pairs = sorted(((k, v or "") for k, v in items), key=lambda kv: kv[0])
    return "&".join(
        quote(k, safe="") + "=" + ",".join(quote(v, safe="") for _, v in group)
        for k, group in itertools.groupby(pairs, key=lambda kv: kv[0])
    )


def _whole_select(c: _Cursor) -> tuple[SelectItem, ...]:
    forest = _select_forest(c, 0)
    c.eof()
    return forest


def _whole_tree(c: _Cursor) -> LogicTree:
    tree = _logic_tree(c, 0)
    c.eof()
    return tree


def _whole_filter(c: _Cursor) -> OpExpr:
    expr = _op_expr(c, _rest_value)
    c.eof()
    return expr


# `[not.]op.value` with an operator whose value is simply the rest of the parameter: what most
# filters look like (`id=eq.42`).  Their values are too varied for the memo below to help, so
# they skip the combinator parser; `_filter_expr_parsed` stays the definition (a test checks
# that both agree).
_PLAIN_FILTER = re.compile(
    r"(not\.)?(" + "|".join(sorted((*_QUANT_OPS, *_SIMPLE_OPS), key=len, reverse=True)) + r")\.",
)
_SIMPLE_BY_NAME: dict[str, SimpleOperator] = {op: op for op in _SIMPLE_OPS}
_QUANT_BY_NAME: dict[str, QuantOperator] = {op: op for op in _QUANT_OPS}


def _filter_expr(v: str) -> OpExpr | None:
    """A filter value's expression; None when it does not even start like one."""
    m = _PLAIN_FILTER.match(v)
    if m is None:
        return _filter_expr_parsed(v)
    name, value = m.group(2), v[m.end() :]
    operation: Operation
    simple = _SIMPLE_BY_NAME.get(name)
    if simple is not None:
        operation = OpSimple(simple, value)
    else:
        if name in ("like", "ilike"):
            value = value.replace("*", "%")
        operation = OpQuant(_QUANT_BY_NAME[name], value)
    return OpExpr(operation, m.group(1) is not None)


@functools.lru_cache(maxsize=2048)
def _filter_expr_parsed(v: str) -> OpExpr | None:
    """`_filter_expr` by the grammar: memoised, as the same values arrive again and again."""
    c = _Cursor(f"failed to parse filter ({v})", v)
    try:
        return _whole_filter(c)
    except _Fail:
        if c.i == 0:
            return None
        raise c.error() from None


def parse_query(
    query_items: Sequence[tuple[str, str | None]], *, is_rpc_read: bool = False
) -> QueryParams:
    """Parse decoded query parameters (in order; ``None`` for a key without ``=``).

    ``is_rpc_read`` is set for GET/HEAD on ``/rpc/fn``: a parameter whose value is not an
    ``op.value`` expression is then a function argument (``rpc_args``) instead of an error.
    Raises ``ParseError`` (PGRST100, or PGRST103 for a negative limit) and nothing else.
    """
    items = list(query_items)
    for k, v in items:
        _reject_bad_chars("name", k)
        if v is not None:
            _reject_bad_chars("value", v)
    present = [(k, v) for k, v in items if v is not None]

    def lookup(name: str) -> str | None:
        return next((v for k, v in items if k == name), None)

    def tree_path(key: str) -> tuple[EmbedPath, Field]:
        return _run(f"failed to parse tree path ({key})", key, _tree_path)

    order = tuple(
        (tree_path(k)[0], _run(f"failed to parse order ({v})", v, _order))
        for k, v in present
        if last_word(k) == "order"
    )

    logic: list[tuple[EmbedPath, LogicTree]] = []
    for k, v in present:
        if last_word(k) not in ("and", "or"):
            continue
        embed, op = _run(f"failed to parse logic path ({k})", k, _logic_path)
        logic.append((embed, _run(f"failed to parse logic tree ({v})", op + v, _whole_tree)))

    columns_text = lookup("columns")
    columns = (
        None
        if columns_text is None
        else _run(f"failed to parse columns parameter ({columns_text})", columns_text, _columns)
    )

    select_text = lookup("select")
    select = (
        (SelectField(Field("*")),)
        if select_text is None
        else _run(f"failed to parse select parameter ({select_text})", select_text, _whole_select)
    )

    filters: list[tuple[EmbedPath, Filter]] = []
    rpc_args: list[tuple[str, str]] = []
    for k, v in present:
        if k in _RESERVED or last_word(k) in _RESERVED_EMBEDDABLE:
            continue
        embed, fld = tree_path(k)
        expr = _filter_expr(v)
        if expr is None:
            # PostgREST's `pOpExpr pSingleVal <|> pure (NoOpExpr v)`: only a value that did not
            # even start like an operator (nothing consumed) becomes a function argument.
            if is_rpc_read:
                rpc_args.append((fld.name, v))
                continue
            _run(f"failed to parse filter ({v})", v, _whole_filter)  # raises its ParseError
        assert expr is not None
        filters.append((embed, Filter(fld, expr)))

    conflict_text = lookup("on_conflict")
    on_conflict = (
        None
        if conflict_text is None
        else _run(
            f"failed to parse on_conflict parameter ({conflict_text})", conflict_text, _columns
        )
    )

    limits: dict[EmbedPath, int | None] = {}
    offsets: dict[EmbedPath, int | None] = {}
    for k, v in present:
        word = last_word(k)
        if word in ("limit", "offset"):
            target = limits if word == "limit" else offsets
            target[tree_path(k)[0]] = _read_int(v)  # the last one wins, as in PostgREST
    ranges: list[tuple[EmbedPath, RowRange]] = []
    for path in dict.fromkeys([*limits, *offsets]):
        limit, offset = limits.get(path), offsets.get(path)
        if limit is not None and limit < 0:
            raise _range_error(_NEGATIVE_LIMIT)
        ranges.append((path, RowRange(max(offset or 0, 0), limit)))

    return QueryParams(
        select=select,
        filters=tuple(filters),
        logic=tuple(logic),
        order=order,
        ranges=tuple(ranges),
        columns=columns,
        on_conflict=on_conflict,
        rpc_args=tuple(rpc_args),
        items=tuple(items),
    )


def split_query_string(qs: bytes | str) -> list[tuple[str, str | None]]:
    """Split and percent-decode a raw query string the way PostgREST's http-types does.

    ``&`` and ``;`` both separate parameters, ``+`` is a space, and a key without ``=`` has the
    value ``None``. Bytes that are not UTF-8 after decoding are PGRST100.
    """
    # surrogatepass lets lone surrogates through as bytes that then fail UTF-8 decoding.
    raw = qs.encode("utf-8", "surrogatepass") if isinstance(qs, str) else qs
    if raw.startswith(b"?"):
        raw = raw[1:]
    out: list[tuple[str, str | None]] = []
    for part in re.split(rb"[&;]", raw):
        if not part:
            continue
        key, eq, value = part.partition(b"=")
        texts: list[str] = []
        for chunk in (key, value) if eq else (key,):
            decoded = unquote_to_bytes(chunk.replace(b"+", b" "))
            try:
                texts.append(decoded.decode("utf-8"))
            except UnicodeDecodeError as e:
                raise ParseError(
                    "PGRST100",
                    "Could not decode the query string as UTF-8",
                    details=f"invalid byte 0x{decoded[e.start]:02x} in parameter {decoded[:100]!r}",
                ) from None
        out.append((texts[0], texts[1] if eq else None))
    return out


def parse_query_string(qs: bytes | str, *, is_rpc_read: bool = False) -> QueryParams:
    """``parse_query(split_query_string(qs))``."""
    return parse_query(split_query_string(qs), is_rpc_read=is_rpc_read)


# --------------------------------------------------------------------------------------------
# Range header

_RANGE = re.compile(r"([0-9]+)-([0-9]*)")


def parse_range(header: str | None, unit: str | None = None) -> RowRange | None:
    """The ``Range: 0-19`` / ``Range: 10-`` request header, or ``None`` when absent or not of
    that form (PostgREST then ignores it). Only GET honours it; callers pass ``None`` otherwise.

    ``unit`` (``Range-Unit``) is accepted for symmetry but, as in PostgREST, not checked.
    """
    del unit
    m = _RANGE.fullmatch(header) if header is not None else None
    if m is None:
        return None

    def num(digits: str) -> int:
        return _INT64_MAX if len(digits) > 18 else int(digits)

    lower = num(m.group(1))
    if not m.group(2):
        return RowRange(lower, None)
    upper = num(m.group(2))
    if upper < lower:
        raise _range_error(_LOWER_GT_UPPER)
    return RowRange(lower, upper - lower + 1)


def top_level_range(params: QueryParams, header: RowRange | None) -> RowRange:
    """The rows to return: ``limit``/``offset`` intersected with the Range header.

    ``limit=0`` wins outright (an empty page, never an error); an empty intersection otherwise
    is PGRST103, as in PostgREST's ``getRanges``.
    """
    query = params.range_for(())
    if header is None or query.limit == 0:
        return query
    lower = max(query.offset, header.offset)
    uppers = [r.offset + r.limit - 1 for r in (query, header) if r.limit is not None]
    if not uppers:
        return RowRange(lower, None)
    upper = min(uppers)
    if upper < lower:
        raise _range_error(_NEGATIVE_LIMIT)
    return RowRange(lower, upper - lower + 1)


# --------------------------------------------------------------------------------------------
# Prefer header

Resolution: TypeAlias = Literal["merge-duplicates", "ignore-duplicates"]
Representation: TypeAlias = Literal["representation", "minimal", "headers-only"]
CountMethod: TypeAlias = Literal["exact", "planned", "estimated"]
Missing: TypeAlias = Literal["default", "null"]
Handling: TypeAlias = Literal["strict", "lenient"]
Tx: TypeAlias = Literal["commit", "rollback"]
Action: TypeAlias = Literal["read", "create", "update", "delete", "upsert", "rpc"]

_RESOLUTIONS: tuple[Resolution, ...] = ("merge-duplicates", "ignore-duplicates")
_REPRESENTATIONS: tuple[Representation, ...] = ("representation", "minimal", "headers-only")
_COUNTS: tuple[CountMethod, ...] = ("exact", "planned", "estimated")
_MISSING: tuple[Missing, ...] = ("default", "null")
_HANDLING: tuple[Handling, ...] = ("strict", "lenient")
_TX: tuple[Tx, ...] = ("commit", "rollback")
_ACCEPTED = frozenset(
    [f"resolution={v}" for v in _RESOLUTIONS]
    + [f"return={v}" for v in _REPRESENTATIONS]
    + [f"count={v}" for v in _COUNTS]
    + [f"missing={v}" for v in _MISSING]
    + [f"handling={v}" for v in _HANDLING]
    + [f"tx={v}" for v in _TX]
)
_HTTP_WS = " \t\r\n\f\v"


@dataclass(frozen=True, slots=True)
class Preferences:
    """The ``Prefer`` header(s). For each preference the first occurrence wins."""

    resolution: Resolution | None = None
    representation: Representation | None = None
    count: CountMethod | None = None
    tx: Tx | None = None
    missing: Missing | None = None
    handling: Handling | None = None
    timezone: str | None = None
    max_affected: int | None = None
    invalid: tuple[str, ...] = ()
    """Unrecognised preferences, verbatim and in order (an empty item counts too)."""

    @property
    def effective_max_affected(self) -> int | None:
        """``max-affected`` is only honoured together with ``handling=strict``."""
        return self.max_affected if self.handling == "strict" else None

    def check_strict(self) -> None:
        """PGRST122 when ``handling=strict`` meets preferences we do not know."""
        if self.handling == "strict" and self.invalid:
            raise ParseError(
                "PGRST122",
                "Invalid preferences given with handling=strict",
                details="Invalid preferences: " + ", ".join(self.invalid),
            )


def parse_prefer(values: Iterable[str], *, allow_tx_override: bool = True) -> Preferences:
    """Parse every ``Prefer`` header value (comma-separated, several headers merged).

    ``allow_tx_override`` mirrors ``db-tx-end``: when false, ``tx=`` is recognised (so it is
    not "invalid") but ignored.
    """
    return _parse_prefer(tuple(values), allow_tx_override)


@functools.lru_cache(maxsize=256)
def _parse_prefer(values: tuple[str, ...], allow_tx_override: bool) -> Preferences:
    """Memoised: clients send the same few Prefer headers (mostly none) on every request."""
    prefs = [p.strip(_HTTP_WS) for v in values if v for p in v.split(",")]
    usable = [p for p in prefs if not _BAD_CHAR.search(p)]

    def first(prefix: str, choices: tuple[T, ...]) -> T | None:
        wanted = {f"{prefix}={c}": c for c in choices}
        return next((wanted[p] for p in usable if p in wanted), None)

    timezone = next((p[len("timezone=") :] for p in usable if p.startswith("timezone=")), None)
    max_text = next(
        (p[len("max-affected=") :] for p in usable if p.startswith("max-affected=")), None
    )
    max_affected = None if max_text is None else _read_int(max_text)
    if max_affected is not None and max_affected >= _INT64_MAX:
        max_affected = None  # did not fit PostgREST's Int64

    def is_invalid(p: str) -> bool:
        return _BAD_CHAR.search(p) is not None or (
            p not in _ACCEPTED and not p.startswith(("timezone=", "max-affected="))
        )

    return Preferences(
        resolution=first("resolution", _RESOLUTIONS),
        representation=first("return", _REPRESENTATIONS),
        count=first("count", _COUNTS),
        tx=first("tx", _TX) if allow_tx_override else None,
        missing=first("missing", _MISSING),
        handling=first("handling", _HANDLING),
        timezone=timezone,
        max_affected=max_affected,
        invalid=tuple(p for p in prefs if is_invalid(p)),
    )


def preference_applied(
    prefs: Preferences, action: Action, *, resolution_applies: bool = False
) -> str | None:
    """The ``Preference-Applied`` value, or ``None`` for no header.

    Follows PostgREST's ``responsePreferences``: ``resolution`` only on inserts that have a
    conflict target (a primary key or ``on_conflict``, hence ``resolution_applies``),
    ``return`` on table writes, ``missing`` on insert/update, ``max-affected`` on
    update/delete/rpc under ``handling=strict``. ``upsert`` is PUT.
    """
    values: list[str] = []
    if prefs.resolution and action == "create" and resolution_applies:
        values.append(f"resolution={prefs.resolution}")
    if prefs.missing and action in ("create", "update"):
        values.append(f"missing={prefs.missing}")
    if prefs.representation and action in ("create", "update", "delete", "upsert"):
        values.append(f"return={prefs.representation}")
    if prefs.count:
        values.append(f"count={prefs.count}")
    if prefs.tx:
        values.append(f"tx={prefs.tx}")
    if prefs.handling:
        values.append(f"handling={prefs.handling}")
    if prefs.timezone is not None:
        values.append(f"timezone={prefs.timezone}")
    if prefs.effective_max_affected is not None and action in ("update", "delete", "rpc"):
        values.append(f"max-affected={prefs.max_affected}")
    return ", ".join(values) or None
