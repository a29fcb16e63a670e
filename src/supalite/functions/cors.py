"""The app's CORS middleware, with Functions left to answer their own CORS.

On Supabase a function handles its preflight (the templates answer OPTIONS with their
`corsHeaders`) and sets its own CORS headers, so requests under `/functions/v1/` reach the
function untouched: the only help given is `Access-Control-Allow-Origin: *` (and the exposed
headers) on a response that sets no CORS headers of its own.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Message, Receive, Scope, Send

FUNCTIONS_PREFIX = "/functions/v1/"


class FunctionsAwareCORSMiddleware(CORSMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(FUNCTIONS_PREFIX):
            await super().__call__(scope, receive, send)
            return
        if "origin" not in Headers(scope=scope):
            await self.app(scope, receive, send)
            return

        async def send_with_defaults(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "access-control-allow-origin" not in headers:
                    for key, value in self.simple_headers.items():
                        headers.setdefault(key, value)
            await send(message)

        await self.app(scope, receive, send_with_defaults)
