"""The hop to a worker keeps its connections: a response read to its end gives the connection
back for the next call, unless the worker said `connection: close`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from supalite.functions.hop import HopClient


class _Server:
    """An HTTP/1.1 server on a Unix socket that counts the connections it accepts."""

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                writer.write(self.response)
                await writer.drain()
                if b"connection: close" in self.response:
                    return
        finally:
            writer.close()


async def _calls(path: Path, response: bytes, n: int) -> tuple[int, list[bytes]]:
    server = _Server(response)
    srv = await asyncio.start_unix_server(server.handle, str(path))
    client = HopClient(str(path))
    bodies = []
    try:
        for _ in range(n):
            r = await client.send("GET", "/f", [("host", "worker")], None, None)
            bodies.append(await r.read())
            r.close()
    finally:
        await client.aclose()
        srv.close()
        await srv.wait_closed()
    return server.connections, bodies


def test_one_connection_serves_every_call(tmp_path: Path) -> None:
    response = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    connections, bodies = asyncio.run(_calls(tmp_path / "w.sock", response, 5))
    assert bodies == [b"ok"] * 5
    assert connections == 1


def test_chunked_response_read_to_its_end_keeps_the_connection(tmp_path: Path) -> None:
    response = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    connections, bodies = asyncio.run(_calls(tmp_path / "w.sock", response, 3))
    assert bodies == [b"ok"] * 3
    assert connections == 1


def test_connection_close_is_honoured(tmp_path: Path) -> None:
    response = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
    connections, bodies = asyncio.run(_calls(tmp_path / "w.sock", response, 3))
    assert bodies == [b"ok"] * 3
    assert connections == 3
