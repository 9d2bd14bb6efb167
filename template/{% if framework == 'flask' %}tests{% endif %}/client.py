"""The HTTP client the API tests talk to the app with (over WSGI, no server). Every flavour's
tests name theirs `Client` and call it the same way, so one test reads the same in each."""

from httpx import Client

__all__ = ["Client"]
