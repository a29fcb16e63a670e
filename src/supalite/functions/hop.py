"""The hop from supalite to a worker: HTTP/1.1 over the worker's Unix socket, kept minimal.

A general client (httpx) spent about half of a call's CPU time in supalite on machinery this hop
does not need (redirects, auth flows, async-library detection, URL models).  Here: keep-alive
connections per worker, the request head written in one piece, the body streamed (with its
Content-Length, or chunked), and the response parsed by httptools (the C parser uvicorn uses).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import httptools

_READ = 65536


class HopError(Exception):
    """The worker closed the connection or sent something that is not HTTP."""


class _Parser:
    """httptools callbacks: the status line and headers, then body chunks as they arrive."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.chunks: list[bytes] = []
        self.done = False
        self.keep_alive = False
        self.parser = httptools.HttpResponseParser(self)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        # Asked here: once the message is complete, llhttp resets and always answers False.
        self.keep_alive = self.parser.should_keep_alive()
        self.done = True


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class HopResponse:
    def __init__(
        self, client: HopClient, conn: _Connection, parser: _Parser, head_only: bool
    ) -> None:
        self._client = client
        self._conn: _Connection | None = conn
        self._parser = parser
        self.status: int = parser.parser.get_status_code()
        self.headers = parser.headers
        if head_only:  # a response to HEAD has no body, whatever Content-Length says
            parser.done = True

    def header(self, name: bytes) -> bytes | None:
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        p = self._parser
        while True:
            if p.chunks:
                out, p.chunks = p.chunks, []
                for chunk in out:
                    yield chunk
            if p.done:
                return
            conn = self._conn
            if conn is None:
                raise HopError("response closed")
            data = await conn.reader.read(_READ)
            if not data:
                raise HopError("the worker closed the connection mid-response")
            try:
                p.parser.feed_data(data)
            except httptools.HttpParserError as e:
                raise HopError(f"bad response from the worker: {e}") from e

    async def read(self) -> bytes:
        return b"".join([c async for c in self.chunks()])

    def close(self) -> None:
        """Back to the pool when the response was read to its end, else dropped."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._parser.done and self._parser.keep_alive:
            self._client.give_back(conn)
        else:
            conn.close()


class HopClient:
    def __init__(self, path: str) -> None:
        self.path = path
        self._idle: list[_Connection] = []
        self._closed = False

    async def _connect(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.reader.at_eof() and not conn.writer.is_closing():
                return conn
            conn.close()
        try:
            reader, writer = await asyncio.open_unix_connection(self.path, limit=_READ * 4)
        except OSError as e:
            raise HopError(f"cannot connect to the worker: {e}") from e
        return _Connection(reader, writer)

    def give_back(self, conn: _Connection) -> None:
        if self._closed or len(self._idle) >= 64:
            conn.close()
        else:
            self._idle.append(conn)

    async def send(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: AsyncIterator[bytes] | None,
        content_length: int | None,
    ) -> HopResponse:
        """Send the request (body included) and read up to the end of the response headers."""
        conn = await self._connect()
        try:
            return await self._exchange(conn, method, target, headers, body, content_length)
        except BaseException:
            conn.close()
            raise

    async def _exchange(
        self,
        conn: _Connection,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: AsyncIterator[bytes] | None,
        content_length: int | None,
    ) -> HopResponse:
        lines = [f"{method} {target} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in headers]
        chunked = body is not None and content_length is None
        if chunked:
            lines.append("transfer-encoding: chunked")
        elif body is not None:
            lines.append(f"content-length: {content_length}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        w = conn.writer
        try:
            w.write(head)
            if body is not None:
                async for chunk in body:
                    if not chunk:
                        continue
                    w.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                    await w.drain()
                if chunked:
                    w.write(b"0\r\n\r\n")
            await w.drain()
        except (ConnectionError, OSError) as e:
            raise HopError(f"the worker closed the connection: {e}") from e
        parser = _Parser()
        while not parser.headers_done:
            data = await conn.reader.read(_READ)
            if not data:
                raise HopError("the worker closed the connection without answering")
            try:
                parser.parser.feed_data(data)
            except httptools.HttpParserError as e:
                raise HopError(f"bad response from the worker: {e}") from e
        return HopResponse(self, conn, parser, head_only=method == "HEAD")

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
