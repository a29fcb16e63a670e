"""Which functions exist: `supabase/functions/<name>/main.py` (Python) or `index.ts` (TypeScript,
as the Supabase CLI lays them out), with per-function settings from config.toml's
`[functions.<name>]` tables (`verify_jwt` defaults to true, `enabled = false` hides one).

The folder is read on every lookup (a few stat calls), so a function created while the server
runs is served at once.  Deployed functions (stored in the database) are the other source of
FunctionSpecs: deployed.py, consulted first by runtime.FunctionsRuntime.resolve.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

# The Supabase CLI's slug rule (internal/utils/misc.go FuncSlugPattern).
SLUG = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")

# Not a function's source: local state, caches, dependencies a runtime fetches itself.
SKIPPED = frozenset({"node_modules", "__pycache__", ".venv", ".git"})

PY_ENTRY = "main.py"
TS_ENTRIES = ("index.ts", "index.js", "index.mjs", "index.tsx", "index.jsx")

Lang = Literal["python", "typescript"]


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    lang: Lang
    entrypoint: Path
    verify_jwt: bool
    # Which secrets the workers' environment holds: a change gives fresh workers.
    env_rev: str = ""
    # `functions serve`: the dotenv file its workers read (None: supabase/functions/.env),
    # and a fingerprint of its source files, so an edited file gives fresh workers.
    env_file: Path | None = None
    rev: str = ""

    @property
    def directory(self) -> Path:
        return self.entrypoint.parent

    def version(self) -> float:
        """The entrypoint's modification time: a changed file gets fresh workers."""
        try:
            return self.entrypoint.stat().st_mtime
        except OSError:
            return 0.0


class Registry:
    def __init__(self, supabase_dir: Path, per_function: Mapping[str, Mapping[str, Any]]):
        self.supabase_dir = supabase_dir
        self.functions_dir = supabase_dir / "functions"
        self.per_function = per_function

    def get(self, name: str) -> FunctionSpec | None:
        if not SLUG.match(name):
            return None
        conf = self.per_function.get(name, {})
        if conf.get("enabled", True) is False:
            return None
        verify_jwt = bool(conf.get("verify_jwt", True))
        folder = self.functions_dir / name
        custom = conf.get("entrypoint")
        if isinstance(custom, str) and custom:
            entry = (self.supabase_dir / custom).resolve()
            if entry.is_file():
                lang: Lang = "python" if entry.suffix == ".py" else "typescript"
                return FunctionSpec(name, lang, entry, verify_jwt)
            return None
        if (folder / PY_ENTRY).is_file():
            return FunctionSpec(name, "python", (folder / PY_ENTRY).resolve(), verify_jwt)
        for candidate in TS_ENTRIES:
            if (folder / candidate).is_file():
                return FunctionSpec(name, "typescript", (folder / candidate).resolve(), verify_jwt)
        return None

    def names(self) -> list[str]:
        if not self.functions_dir.is_dir():
            return []
        return sorted(
            p.name for p in self.functions_dir.iterdir() if p.is_dir() and self.get(p.name)
        )

    def secrets(self) -> dict[str, str]:
        """`supabase/functions/.env`, as `supabase functions serve` reads it."""
        return read_env_file(self.functions_dir / ".env")


def source_files(folder: Path) -> Iterator[Path]:
    """The files of a function's folder (or a shared `_*` one) that make up its code: what a
    deploy carries and what `functions serve` watches.  Dot-files and SKIPPED folders are not."""
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(p.startswith(".") or p in SKIPPED for p in rel.parts) or not path.is_file():
            continue
        yield path


def shared_folders(functions_dir: Path) -> list[Path]:
    """The `_*` folders beside the functions (Supabase's `../_shared/` convention)."""
    return [p for p in sorted(functions_dir.glob("_*")) if p.is_dir()]


_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines (dotenv): comments, `export`, single and double quotes.  Names starting
    with SUPABASE_ are skipped, as the Supabase CLI skips them: those are injected."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _ENV_LINE.match(line)
        if not m:
            continue
        key, value = m.group(1), m.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                value = value.replace("\\n", "\n").replace('\\"', '"')
        else:
            value = re.sub(r"\s+#.*$", "", value)
        if not key.startswith("SUPABASE_"):
            out[key] = value
    return out
