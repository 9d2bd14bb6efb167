"""What Django's own middleware does not cover: a Content-Security-Policy on JSON, no caching of
the API, HSTS in production, the request body limit as a 413 problem, and CORS only for the
origins CORS_ORIGINS names.

SecurityMiddleware and XFrameOptionsMiddleware send nosniff, the referrer and opener policies
and frame denial (see settings.py). CORS is a few lines of our own rather than
django-cors-headers: the API needs one fixed policy (no credentials, four methods, two headers),
and it reads the same setting the other flavours read.
"""

import io
from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import patch_vary_headers

from .problems import problem_response

# JSON answers never need to load anything; the HTML docs page loads its own scripts and
# styles, so it keeps the other headers but gets no Content-Security-Policy.
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000; includeSubDomains"
CORS_METHODS = "GET, POST, PATCH, DELETE"
CORS_HEADERS = "Authorization, Content-Type"
CORS_MAX_AGE = "600"
CHUNK_BYTES = 64 * 1024


def too_large(request: HttpRequest) -> HttpResponse:
    limit = settings.MAX_REQUEST_BODY_BYTES
    return problem_response(
        request,
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        f"The request body is larger than {limit} bytes.",
    )


def _allowed_origin(request: HttpRequest) -> str | None:
    origin = request.headers.get("Origin")
    origins: list[str] = settings.CORS_ORIGINS
    if origin is None or not origins:
        return None
    if "*" in origins:
        return "*"
    return origin if origin in origins else None


class HardeningMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self._answer(request)
        if response.get("Content-Type", "").split(";")[0] != "text/html":
            response.headers.setdefault("Content-Security-Policy", API_CONTENT_SECURITY_POLICY)
        if request.path.startswith("/api/"):
            # Tokens and users must not sit in shared caches.
            response["Cache-Control"] = "no-store"
        if settings.ENVIRONMENT == "production":
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        origin = _allowed_origin(request)
        if origin is not None:
            # Bearer tokens, not cookies: no credentials mode.
            response["Access-Control-Allow-Origin"] = origin
            if origin != "*":
                patch_vary_headers(response, ["Origin"])  # keeps what the view said varies
        return response

    def _answer(self, request: HttpRequest) -> HttpResponseBase:
        limit: int = settings.MAX_REQUEST_BODY_BYTES
        declared = request.META.get("CONTENT_LENGTH", "")
        if declared.isdigit() and int(declared) > limit:
            return too_large(request)  # refused before anything reads it
        if not declared and request.META.get("wsgi.input_terminated"):
            # A streamed (chunked) body, which the server has ended: Django reads exactly
            # CONTENT_LENGTH bytes and would see none of it. Read one byte past the limit.
            stream = request.META["wsgi.input"]
            body = bytearray()
            while len(body) <= limit:
                chunk = stream.read(min(CHUNK_BYTES, limit + 1 - len(body)))
                if not chunk:
                    break
                body += chunk
            if len(body) > limit:
                return too_large(request)
            request.META["CONTENT_LENGTH"] = str(len(body))
            request._stream = io.BytesIO(bytes(body))
        if (
            request.method == "OPTIONS"
            and "Access-Control-Request-Method" in request.headers
            and _allowed_origin(request) is not None
        ):
            response = HttpResponse(status=HTTPStatus.OK)
            response["Access-Control-Allow-Methods"] = CORS_METHODS
            response["Access-Control-Allow-Headers"] = CORS_HEADERS
            response["Access-Control-Max-Age"] = CORS_MAX_AGE
            return response
        return self.get_response(request)
