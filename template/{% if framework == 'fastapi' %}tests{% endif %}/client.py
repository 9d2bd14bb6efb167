"""The HTTP client the API tests talk to the app with. Every flavour's tests name theirs `Client`
and call it the same way, so one test reads the same in each."""

from httpx import AsyncClient as Client

__all__ = ["Client"]
