"""What every response and request goes through: security headers, a request body limit, and
CORS only for the origins CORS_ORIGINS names."""

from http import HTTPStatus

from fastapi import FastAPI, HTTPException
from fastapi.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import problem_response
from .settings import Settings

# JSON answers never need to load anything; the HTML docs page loads its own scripts and
# styles, so it keeps the other headers but gets no Content-Security-Policy.
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, production: bool) -> None:
        self.app = app
        self.production = production

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                present = {name.lower() for name, _ in headers}
                content_type = next(
                    (value for name, value in headers if name.lower() == b"content-type"), b""
                )
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                ]
                if not content_type.startswith(b"text/html"):
                    extra.append((b"content-security-policy", API_CONTENT_SECURITY_POLICY.encode()))
                if scope["path"].startswith("/api/"):
                    # Tokens and users must not sit in shared caches.
                    extra.append((b"cache-control", b"no-store"))
                if self.production:
                    extra.append((b"strict-transport-security", HSTS.encode()))
                headers.extend((name, value) for name, value in extra if name not in present)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodySizeLimitMiddleware:
    """Refuses a request body larger than the limit with a 413 problem: at once when its
    Content-Length says so, or as soon as a streamed body goes past it."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> HTTPException:
        return HTTPException(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"The request body is larger than {self.max_bytes} bytes.",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            request = Request(scope)
            error = self._too_large()
            response = problem_response(request, HTTPStatus(error.status_code), error.detail)
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the endpoint's body read, so it becomes a 413 problem.
                    raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)


def install_hardening(app: FastAPI, settings: Settings) -> None:
    if settings.cors_origins:
        # Bearer tokens, not cookies: no credentials mode, only the headers the API reads.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware, production=settings.environment == "production")
