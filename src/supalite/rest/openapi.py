"""The OpenAPI document PostgREST serves at `/rest/v1/` (Swagger 2.0, as PostgREST's)."""

from __future__ import annotations

from typing import Any

from supalite import __version__
from supalite.config import Settings


def openapi_document(settings: Settings) -> dict[str, Any]:
    host = settings.api_url.split("://", 1)[1]
    return {
        "swagger": "2.0",
        "info": {
            "description": "",
            "title": "standard public schema",
            "version": __version__,
        },
        "host": host,
        "basePath": "/rest/v1",
        "schemes": ["http"],
        "consumes": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
        "produces": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
        "paths": {"/": {"get": {"produces": ["application/openapi+json", "application/json"],
                                "responses": {"200": {"description": "OK"}},
                                "summary": "OpenAPI description (this document)",
                                "tags": ["Introspection"]}}},
        "definitions": {},
        "parameters": {},
    }  # fmt: skip
