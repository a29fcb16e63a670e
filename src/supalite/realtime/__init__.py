"""Realtime (`/realtime/v1`): Phoenix channels with Postgres changes, broadcast and presence."""
