"""A `TokenStorage` for the official `mcp` SDK's `OAuthClientProvider`, backed by the session
store: a Python app that connects to remote MCP servers with OAuth keeps each connection's
tokens and client registration in its session's credentials (encrypted at rest), so they
survive restarts and are shared by every process of the app.

    storage = SessionTokenStorage(store, user_id, session_id)
    auth = OAuthClientProvider(server_url, client_metadata, storage, redirect_handler, ...)
"""

from __future__ import annotations

from mcp.client.auth import TokenStorage
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import ValidationError

from supalite.sessions import errors
from supalite.sessions.store import SessionStore


class SessionTokenStorage(TokenStorage):
    """Tokens and client information of one `(user_id, session_id)`; the session must exist
    (create it, pending, before the OAuth flow starts, as mcp-ts does)."""

    def __init__(self, store: SessionStore, user_id: str, session_id: str) -> None:
        self.store = store
        self.user_id = user_id
        self.session_id = session_id

    async def _credentials_field(self, name: str) -> object:
        creds = await self.store.get_credentials(self.user_id, self.session_id)
        return None if creds is None else getattr(creds, name)

    async def get_tokens(self) -> OAuthToken | None:
        data = await self._credentials_field("tokens")
        if data is None:
            return None
        try:
            return OAuthToken.model_validate(data)
        except ValidationError as e:
            raise errors.corrupt(self.session_id, "tokens", f"not an OAuth token: {e}") from e

    async def set_tokens(self, tokens: OAuthToken) -> None:
        await self.store.patch_credentials(
            self.user_id,
            self.session_id,
            {"tokens": tokens.model_dump(mode="json", exclude_none=True)},
        )

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        data = await self._credentials_field("client_information")
        if data is None:
            return None
        try:
            return OAuthClientInformationFull.model_validate(data)
        except ValidationError as e:
            raise errors.corrupt(
                self.session_id, "client_information", f"not OAuth client information: {e}"
            ) from e

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        await self.store.patch_credentials(
            self.user_id,
            self.session_id,
            {
                "client_information": client_info.model_dump(mode="json", exclude_none=True),
                "client_id": client_info.client_id,
            },
        )
