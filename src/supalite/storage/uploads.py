"""An upload's body as Supabase Storage reads it, streamed: never buffered whole.

Two forms (Supabase's `fileUploadFromRequest`):

* `multipart/form-data`: the first part with a file name is the file (storage-js names the
  field `''`, storage3 `file`); text fields before it may set `cacheControl` (seconds →
  `max-age=N`, default `no-cache`), `metadata` (JSON; `userMetadata` also accepted) and
  `contentType` (wins over the part's own type).  Fields after the file are not read, as
  Supabase does not read them.
* anything else: the raw body is the file; `Content-Type` is its type (default
  `application/octet-stream`), `Cache-Control` is kept as sent (default `no-cache`) and
  `x-metadata` carries base64 JSON user metadata.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from supalite.storage import errors as E

MAX_FIELDS_BYTES = 1024 * 1024  # Supabase's MAX_CUSTOM_METADATA_SIZE
DEFAULT_MIME = "application/octet-stream"


@dataclass
class UploadBody:
    mimetype: str
    cache_control: str
    user_metadata: dict[str, Any] | None
    declared_length: int | None  # Content-Length of a raw body (not of a multipart one)
    chunks: AsyncIterator[bytes]


def parse_user_metadata(value: str | None, *, b64: bool) -> dict[str, Any] | None:
    """JSON user metadata (`x-metadata` is base64 of it).  Supabase ignores what does not
    parse rather than failing the upload; so does this."""
    if not value:
        return None
    try:
        text = base64.b64decode(value, validate=False).decode() if b64 else value
        parsed = json.loads(text)
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _cache_control_field(seconds: str | None) -> str:
    seconds = (seconds or "").strip()
    return f"max-age={seconds}" if seconds else "no-cache"


class _MultipartReader:
    """Push-parses a multipart body as it arrives, handing out the file part as a stream."""

    def __init__(self, boundary: bytes, stream: AsyncIterable[bytes]) -> None:
        self._events: deque[tuple[str, bytes]] = deque()
        push = self._events.append

        def data_cb(kind: str) -> Callable[[bytes, int, int], None]:
            return lambda data, start, end: push((kind, bytes(data[start:end])))

        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": lambda: push(("begin", b"")),
                "on_header_field": data_cb("field"),
                "on_header_value": data_cb("value"),
                "on_header_end": lambda: push(("header_end", b"")),
                "on_headers_finished": lambda: push(("headers_done", b"")),
                "on_part_data": data_cb("data"),
                "on_part_end": lambda: push(("part_end", b"")),
                "on_end": lambda: push(("end", b"")),
            },
        )
        self._stream = aiter(stream)
        self._stream_done = False

    async def _next(self) -> tuple[str, bytes]:
        while not self._events:
            if self._stream_done:
                raise E.invalid_request("Malformed multipart body")
            try:
                chunk = await anext(self._stream)
            except StopAsyncIteration:
                self._stream_done = True
                try:
                    self._parser.finalize()
                except MultipartParseError as e:
                    raise E.invalid_request("Malformed multipart body") from e
                continue
            try:
                self._parser.write(chunk)
            except MultipartParseError as e:
                raise E.invalid_request("Malformed multipart body") from e
        return self._events.popleft()

    async def first_file(self) -> tuple[dict[str, str], dict[str, str]]:
        """(text fields before the file, the file part's headers)."""
        fields: dict[str, str] = {}
        fields_size = 0
        while True:
            kind, _ = await self._next()
            if kind == "end":
                raise E.no_content()
            if kind != "begin":
                continue
            headers = await self._headers()
            _, params = parse_options_header(headers.get("content-disposition", ""))
            if b"filename" in params:
                return fields, headers
            name = params.get(b"name", b"").decode("utf-8", "replace")
            value = bytearray()
            while True:
                kind, data = await self._next()
                if kind == "data":
                    fields_size += len(data)
                    if fields_size > MAX_FIELDS_BYTES:
                        raise E.invalid_request("Form fields are too large")
                    value += data
                elif kind == "part_end":
                    break
            fields[name] = value.decode("utf-8", "replace")

    async def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        field, value = b"", b""
        size = 0
        while True:
            kind, data = await self._next()
            size += len(data)
            if size > 16 * 1024:
                raise E.invalid_request("Malformed multipart body")
            if kind == "field":
                field += data
            elif kind == "value":
                value += data
            elif kind == "header_end":
                headers[field.decode("latin-1").lower()] = value.decode("latin-1")
                field, value = b"", b""
            elif kind == "headers_done":
                return headers

    async def file_chunks(self) -> AsyncIterator[bytes]:
        while True:
            kind, data = await self._next()
            if kind == "data":
                if data:
                    yield data
            elif kind == "part_end":
                return
            elif kind == "end":
                raise E.invalid_request("Malformed multipart body")


async def read_upload(headers: Mapping[str, str], stream: AsyncIterable[bytes]) -> UploadBody:
    """The upload's type, cache control and metadata, and its bytes still to be streamed."""
    ctype = headers.get("content-type", "")
    mtype, params = parse_options_header(ctype)
    if mtype == b"multipart/form-data":
        boundary = params.get(b"boundary")
        if not boundary:
            raise E.invalid_request("Malformed multipart body")
        reader = _MultipartReader(boundary, stream)
        fields, part = await reader.first_file()
        mime = fields.get("contentType") or part.get("content-type") or DEFAULT_MIME
        meta = fields.get("metadata") or fields.get("userMetadata")
        return UploadBody(
            mimetype=mime.strip(),
            cache_control=_cache_control_field(fields.get("cacheControl")),
            user_metadata=parse_user_metadata(meta, b64=False),
            declared_length=None,
            chunks=reader.file_chunks(),
        )
    length = headers.get("content-length")
    return UploadBody(
        mimetype=ctype.strip() or DEFAULT_MIME,
        cache_control=headers.get("cache-control") or "no-cache",
        user_metadata=parse_user_metadata(headers.get("x-metadata"), b64=True),
        declared_length=int(length) if length and length.isdigit() else None,
        chunks=aiter(stream),
    )
