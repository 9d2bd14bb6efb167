"""The ASGI entry point for servers (`fastapi dev`, `fastapi run`); tests call create_app()."""

from .app import create_app
from .settings import ConfigurationError

try:
    app = create_app()
except ConfigurationError as error:
    # One readable line instead of a traceback, and a non-zero exit.
    raise SystemExit(str(error)) from None
