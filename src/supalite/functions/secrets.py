"""Function secrets (`supalite secrets set/list/unset`): sealed with AES-256-GCM before they
reach the database, opened only to build a worker's environment, never returned by any API —
`list` shows a name and the SHA-256 digest of the value, as the Supabase CLI does.

The key is derived from the project's JWT secret (`keys.derive`), as the `authenticator`
password is: every process that can verify tokens already shares that
secret, so a fleet needs no other key to distribute, and the database alone (a dump, a
replica) does not reveal the values.  Changing the JWT secret makes the stored values
unreadable: set them again afterwards (they are then skipped, with a warning in the log).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from supalite.functions.deploy import bad
from supalite.keys import derive
from supalite.sessions.crypto import Cipher

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_VALUE = 64 * 1024
MAX_COUNT = 500


def cipher(jwt_secret: str) -> Cipher:
    return Cipher(derive(jwt_secret, "supalite-function-secrets"))


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME.match(name) or len(name) > 256:
        raise bad(f"invalid secret name {name!r}: letters, digits and _, not starting with a digit")
    if name.upper().startswith("SUPABASE_"):
        # As the Supabase CLI: those are injected into every function, not set by hand.
        raise bad(f"secret name {name!r}: names starting with SUPABASE_ are reserved")
    return name


def parse_secrets(body: Any) -> dict[str, str]:
    """`[{name, value}]`, the Management API's shape for `POST /secrets`."""
    if not isinstance(body, list) or not body:
        raise bad("the body must be a non-empty list of {name, value} objects")
    if len(body) > MAX_COUNT:
        raise bad(f"at most {MAX_COUNT} secrets at once")
    out: dict[str, str] = {}
    for item in body:
        if not isinstance(item, dict) or set(item) != {"name", "value"}:
            raise bad("each secret must be an object {name, value}")
        name, value = check_name(item["name"]), item["value"]
        if not isinstance(value, str):
            raise bad(f"secret {name}: value must be a string")
        if len(value.encode()) > MAX_VALUE or "\x00" in value:
            raise bad(f"secret {name}: value over {MAX_VALUE} bytes or with a NUL character")
        out[name] = value
    return out


def parse_names(body: Any) -> list[str]:
    """`["NAME", …]`, the Management API's shape for `DELETE /secrets`."""
    if not isinstance(body, list) or not body or len(body) > MAX_COUNT:
        raise bad(f"the body must be a list of 1 to {MAX_COUNT} secret names")
    return [check_name(n) for n in body]
