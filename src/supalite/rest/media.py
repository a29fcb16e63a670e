"""Content negotiation for the Data API: the `Accept` header → the representation to render,
and PostgREST's execution-plan media type
(`application/vnd.pgrst.plan[+json|+text]; for="<media>"; options=analyze|verbose|…`).

Follows PostgREST's `MediaType.decodeMediaType` and `Plan.Negotiate`: the first acceptable
entry wins; a plan entry is acceptable only when `db-plan-enabled` is on and its `for` media is
one the resource can produce; options PostgREST does not know are ignored, as it does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from supalite.rest.errors import ApiError

Media = Literal["json", "json_stripped", "single", "single_stripped", "csv", "geojson"]
PlanFormat = Literal["json", "text"]

# EXPLAIN's options in PostgREST's order (its Content-Type lists them in this order).
PLAN_OPTIONS = ("analyze", "verbose", "settings", "buffers", "wal")

_ENTRY = re.compile(r'(?:"[^"]*"|[^,])+')  # commas inside quoted parameter values stay
_PART = re.compile(r'(?:"[^"]*"|[^;])+')


@dataclass(frozen=True)
class PlanMedia:
    """An execution plan asked for: of the statement that would render `target`."""

    target: Media | None  # None: a `for` media the resource cannot produce
    for_mime: str  # `for` as PostgREST names it in Content-Type and errors
    fmt: PlanFormat
    options: tuple[str, ...]

    @property
    def mime(self) -> str:
        opts = f"; options={'|'.join(self.options)}" if self.options else ""
        return f'application/vnd.pgrst.plan+{self.fmt}; for="{self.for_mime}"{opts}'

    @property
    def content_type(self) -> str:
        return self.mime + "; charset=utf-8"

    def explain(self, statement: str) -> str:
        """EXPLAIN of the statement as rendered (its values stay bind parameters)."""
        opts = ", ".join([f"FORMAT {self.fmt.upper()}", *(o.upper() for o in self.options)])
        return f"EXPLAIN ({opts}) {statement}"


def _split(value: str) -> tuple[str, dict[str, str]]:
    """`type/sub; k=v; k="v"` → lower-cased type and parameters (names and values)."""
    mt, *raw = (x.strip() for x in _PART.findall(value) or [""])
    params: dict[str, str] = {}
    for item in raw:
        k, sep, v = item.partition("=")
        if sep:
            params[k.strip().lower()] = v.strip().strip('"').strip().lower()
    return mt.lower(), params


def _decode(mt: str, params: dict[str, str]) -> tuple[Media, str] | None:
    """A representation media type → (what to render, PostgREST's name for it)."""
    stripped = params.get("nulls") == "stripped"
    if mt in ("", "application/json"):
        return "json", "application/json"
    if mt in ("*/*", "application/*"):
        return "json", mt
    if mt in ("application/vnd.pgrst.object+json", "application/vnd.pgrst.object"):
        name = "application/vnd.pgrst.object+json"
        return ("single_stripped", name + ";nulls=stripped") if stripped else ("single", name)
    if mt in ("application/vnd.pgrst.array+json", "application/vnd.pgrst.array"):
        if stripped:
            return "json_stripped", "application/vnd.pgrst.array+json;nulls=stripped"
        return "json", "application/json"
    if mt == "text/csv":
        return "csv", "text/csv"
    if mt == "application/geo+json":
        # Always acceptable, as in PostgREST (a built-in handler, whether PostGIS is installed
        # or not): without PostGIS the statement fails with Postgres's own error.
        return "geojson", "application/geo+json"
    return None


_PLAN_FORMATS: dict[str, PlanFormat] = {
    "application/vnd.pgrst.plan": "text",
    "application/vnd.pgrst.plan+text": "text",
    "application/vnd.pgrst.plan+json": "json",
}


def _plan(fmt: PlanFormat, params: dict[str, str]) -> PlanMedia:
    raw_for = params.get("for", "application/json")
    target = _decode(*_split(raw_for))
    wanted = set(params.get("options", "").split("|"))
    return PlanMedia(
        target=target[0] if target else None,
        for_mime=target[1] if target else raw_for,
        fmt=fmt,
        options=tuple(o for o in PLAN_OPTIONS if o in wanted),
    )


def entries(accept: str) -> list[tuple[str, str]]:
    """Each entry of an `Accept` header: (its lower-cased type, PostgREST's name for it in
    PGRST107's message)."""
    out = []
    for entry in _ENTRY.findall(accept) or [""]:
        mt, params = _split(entry)
        fmt = _PLAN_FORMATS.get(mt)
        if fmt is not None:
            out.append((mt, _plan(fmt, params).mime))
            continue
        decoded = _decode(mt, params)
        out.append((mt, decoded[1] if decoded is not None else entry.strip()))
    return out


def negotiate(accept: str | None, *, plan_enabled: bool) -> tuple[Media, PlanMedia | None]:
    """The representation to render and, for a plan, what to explain; PGRST107 (406) when no
    entry of `Accept` can be served."""
    header = "*/*" if accept is None else accept
    names: list[str] = []
    for entry in _ENTRY.findall(header) or [""]:
        mt, params = _split(entry)
        fmt = _PLAN_FORMATS.get(mt)
        if fmt is not None:
            plan = _plan(fmt, params)
            if plan_enabled and plan.target is not None:
                return plan.target, plan
            names.append(plan.mime)
            continue
        decoded = _decode(mt, params)
        if decoded is not None:
            return decoded[0], None
        names.append(entry.strip())
    raise ApiError(406, "PGRST107", f"None of these media types are available: {', '.join(names)}")
