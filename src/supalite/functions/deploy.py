"""What a deploy may contain, checked before anything is stored: the slug rule, file paths that
stay inside the function's tree, a size limit, an entrypoint that is one of the files.

Paths are relative to the function's folder.  `../_shared/cors.ts` is allowed (Supabase's
convention for code shared between functions): a version's files are written to a folder of
their own, `<version>/<slug>/…`, so `..` may reach that version's root but never above it.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass
from typing import Any

from supalite.functions.registry import PY_ENTRY, SLUG, TS_ENTRIES, Lang

MAX_TOTAL_BYTES = 10 * 1024 * 1024  # all files of one deploy, UTF-8 (Supabase allows 20 MB)
MAX_FILES = 1000
MAX_PATH = 512
_SUFFIXES: dict[str, Lang] = {".py": "python"}
_SUFFIXES.update({posixpath.splitext(e)[1]: "typescript" for e in TS_ENTRIES})


@dataclass
class AdminError(Exception):
    """A refused admin call: the HTTP status and a message for the caller (`{message}`, as
    Supabase's Management API answers)."""

    status: int
    message: str

    def __str__(self) -> str:
        return self.message


def bad(message: str) -> AdminError:
    return AdminError(400, message)


def check_slug(slug: Any) -> str:
    if not isinstance(slug, str) or not SLUG.match(slug) or len(slug) > 128:
        raise bad(
            f"invalid function name {slug!r}: letters, digits, - and _, starting with a letter"
            " (at most 128 characters)"
        )
    return slug


def clean_path(slug: str, path: Any) -> str:
    """`path` normalised (`./a/../b.ts` → `b.ts`), or AdminError when it is absolute, escapes
    the version's folder, or is not a plain relative file name."""
    if not isinstance(path, str) or not path:
        raise bad("a file name must be a non-empty string")
    shown = repr(path[:100])
    if len(path) > MAX_PATH:
        raise bad(f"file name {shown}… is longer than {MAX_PATH} characters")
    if "\\" in path or "\x00" in path or any(ord(c) < 32 for c in path):
        raise bad(f"file name {shown}: no backslashes or control characters")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise bad(f"file name {shown} is absolute: give it relative to the function's folder")
    full = posixpath.normpath(posixpath.join(slug, path))
    if full == ".." or full.startswith("../") or path.endswith("/"):
        raise bad(f"file name {shown} leaves the function's files (no ../ past the root)")
    if full == slug or full == ".":
        raise bad(f"file name {shown} is a folder, not a file")
    return posixpath.relpath(full, slug)


def lang_of(entrypoint: str) -> Lang:
    lang = _SUFFIXES.get(posixpath.splitext(entrypoint)[1])
    if lang is None:
        raise bad(f"entrypoint {entrypoint!r} must end in {', '.join(sorted(_SUFFIXES))}")
    return lang


@dataclass(frozen=True)
class Deployment:
    slug: str
    name: str
    entrypoint: str
    verify_jwt: bool
    import_map_path: str | None
    files: dict[str, str]

    @property
    def sha256(self) -> str:
        return files_digest(self.files)


def files_digest(files: dict[str, str]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        for part in (name, files[name]):
            data = part.encode()
            h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def parse_files(slug: str, files: Any) -> dict[str, str]:
    """`[{name, content}]` (the Management API's and the MCP tool's shape) or `{name: content}`."""
    if isinstance(files, dict):
        items = list(files.items())
    elif isinstance(files, list):
        items = []
        for f in files:
            if not isinstance(f, dict) or set(f) - {"name", "content"} or "name" not in f:
                raise bad("files must be a list of {name, content} objects")
            items.append((f["name"], f.get("content")))
    else:
        raise bad("files must be a list of {name, content} objects")
    if not items:
        raise bad("files is empty: a deploy needs at least the entrypoint")
    if len(items) > MAX_FILES:
        raise bad(f"too many files ({len(items)}; at most {MAX_FILES})")
    out: dict[str, str] = {}
    total = 0
    for name, content in items:
        path = clean_path(slug, name)
        if not isinstance(content, str):
            raise bad(f"file {path!r}: content must be a string (text files only)")
        if path in out:
            raise bad(f"file {path!r} is given twice")
        total += len(content.encode("utf-8", "surrogatepass")) + len(path)
        if total > MAX_TOTAL_BYTES:
            raise AdminError(413, f"the files are larger than {MAX_TOTAL_BYTES} bytes in total")
        out[path] = content
    return out


def parse_deployment(slug: Any, body: Any) -> Deployment:
    """A deploy request (`{name?, entrypoint_path?, verify_jwt?, import_map_path?, files}`)."""
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object")
    known = {"name", "slug", "entrypoint_path", "verify_jwt", "import_map_path", "files"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise bad(f"unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})")
    slug = check_slug(slug if slug is not None else body.get("slug", body.get("name")))
    name = body.get("name", slug)
    if not isinstance(name, str) or not name or len(name) > 256:
        raise bad("name must be a non-empty string")
    files = parse_files(slug, body.get("files"))
    entry = body.get("entrypoint_path")
    if entry is None:
        entry = next((e for e in (PY_ENTRY, *TS_ENTRIES) if e in files), None)
        if entry is None:
            raise bad(f"no entrypoint_path given and no {PY_ENTRY} or index.ts among the files")
    entry = clean_path(slug, entry)
    if entry not in files:
        raise bad(f"entrypoint {entry!r} is not one of the files")
    lang_of(entry)
    verify_jwt = body.get("verify_jwt", True)
    if not isinstance(verify_jwt, bool):
        raise bad("verify_jwt must be true or false")
    import_map = body.get("import_map_path")
    if import_map is not None:
        import_map = clean_path(slug, import_map)
        if import_map not in files:
            raise bad(f"import_map_path {import_map!r} is not one of the files")
    return Deployment(slug, name, entry, verify_jwt, import_map, files)
