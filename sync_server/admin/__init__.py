"""The server-rendered admin console under ``/admin`` (see docs/admin.md)."""

from .setup import setup_admin

__all__ = ["setup_admin"]
