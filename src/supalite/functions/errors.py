"""What can go wrong around a function call, as values that routes.py renders.

Status codes and bodies are those of Supabase: the CLI's local router
(`supabase/cli:apps/cli-go/internal/functions/serve/templates/main.ts`) for 404, 401 and the
edge-runtime worker errors (503 BOOT_ERROR, 500 WORKER_ERROR, 546 WORKER_LIMIT), and Kong's
150 s read timeout for the 504.  `relay` marks the answers where no function produced a
response: they carry `x-relay-error: true`, which the official clients turn into
FunctionsRelayError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class FunctionsError(Exception):
    status: int
    body: dict[str, Any] | str
    relay: bool = False

    def __str__(self) -> str:
        return str(self.body)


def not_found() -> FunctionsError:
    # The CLI's router answers text/plain "Function not found".
    return FunctionsError(404, "Function not found")


def invalid_jwt(message: str = "Invalid JWT") -> FunctionsError:
    return FunctionsError(401, {"msg": message})


def boot_error(message: str = "Worker failed to boot (please check logs)") -> FunctionsError:
    return FunctionsError(503, {"code": "BOOT_ERROR", "message": message}, relay=True)


def worker_error() -> FunctionsError:
    return FunctionsError(
        500,
        {"code": "WORKER_ERROR", "message": "Function exited due to an error (please check logs)"},
        relay=True,
    )


def worker_limit() -> FunctionsError:
    return FunctionsError(
        546,
        {
            "code": "WORKER_LIMIT",
            "message": "Worker failed to respond due to a resource limit (please check logs)",
        },
        relay=True,
    )


def timed_out() -> FunctionsError:
    # Kong's answer when the upstream does not respond within read_timeout (150 s).
    return FunctionsError(504, {"message": "The upstream server is timed out"}, relay=True)


def too_large(limit: int) -> FunctionsError:
    return FunctionsError(
        413, {"message": f"Request body too large (limit {limit} bytes)"}, relay=True
    )


def no_deno() -> FunctionsError:
    return boot_error(
        "TypeScript functions need Deno, which is not installed. Install it with "
        "`npm install deno` in the project folder (or any folder on PATH), or point "
        "SUPALITE_DENO at a deno binary; Python functions (main.py) need nothing."
    )
