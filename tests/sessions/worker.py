"""A second process writing to a shared session store (run by test_concurrency.py):
`python -m tests.sessions.worker <kind> <where> <prefix> <user> <sid> <field> <tag> <count>`."""

from __future__ import annotations

import asyncio
import sys

from supalite.sessions.crypto import Cipher
from tests.sessions.conftest import KEY, Clock, make_store


async def main(
    kind: str, where: str, prefix: str, user: str, sid: str, field: str, tag: str, count: int
) -> None:
    from pathlib import Path

    # file and sqlite: `where` is the folder that holds the store's file.
    store = make_store(kind, where, Path(where), Clock(), Cipher(bytes.fromhex(KEY)))
    if kind == "redis":
        store.prefix = prefix  # type: ignore[attr-defined]
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    for i in range(count):
        value = f"{tag}-{i}"
        if field == "tokens":
            await store.patch_credentials(user, sid, {"tokens": {"n": value}})
        elif field == "client_id":
            await store.patch_credentials(user, sid, {"client_id": value})
        else:
            await store.update(user, sid, {field: value})
    await store.close()


if __name__ == "__main__":
    a = sys.argv[1:]
    asyncio.run(main(*a[:7], int(a[7])))
