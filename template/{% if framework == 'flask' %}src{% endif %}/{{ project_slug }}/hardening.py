"""What every response and request goes through: security headers, a request body limit, and
CORS only for the origins CORS_ORIGINS names.

CORS is a few lines of our own rather than Flask-CORS: the API needs one fixed policy (no
credentials, four methods, two headers), and the rules stay readable next to the other headers.
"""

import io
from http import HTTPStatus

from apiflask import APIFlask
from flask import Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from .problems import problem_response
from .settings import Settings

# JSON answers never need to load anything; the HTML docs page loads its own scripts and
# styles, so it keeps the other headers but gets no Content-Security-Policy.
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000; includeSubDomains"
CORS_METHODS = "GET, POST, PATCH, DELETE"
CORS_HEADERS = "Authorization, Content-Type"
CORS_MAX_AGE = "600"
CHUNK_BYTES = 64 * 1024
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


def install_hardening(app: APIFlask, settings: Settings) -> None:
    # Werkzeug refuses a larger body, declared or streamed, with RequestEntityTooLarge.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_body_bytes
    production = settings.environment == "production"
    origins = frozenset(settings.cors_origins)

    def allowed_origin() -> str | None:
        origin = request.headers.get("Origin")
        if origin is None or not origins:
            return None
        if "*" in origins:
            return "*"
        return origin if origin in origins else None

    def too_large(error: RequestEntityTooLarge) -> Response:
        return problem_response(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"The request body is larger than {settings.max_request_body_bytes} bytes.",
        )

    def refuse_a_long_stream() -> None:
        """A body without Content-Length (chunked) is read up to one byte past the limit:
        Werkzeug would stop at the limit and hand the view a silently cut body."""
        limit = settings.max_request_body_bytes
        environ = request.environ
        if request.content_length is not None or "wsgi.input_terminated" not in environ:
            return
        stream = environ["wsgi.input"]
        body = bytearray()
        while len(body) <= limit:
            chunk = stream.read(min(CHUNK_BYTES, limit + 1 - len(body)))
            if not chunk:
                break
            body += chunk
        if len(body) > limit:
            raise RequestEntityTooLarge()
        environ["wsgi.input"] = io.BytesIO(bytes(body))

    def answer_preflight() -> Response | None:
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        origin = allowed_origin()
        if origin is None:
            return None  # Flask answers as for any OPTIONS request, without CORS headers
        response = Response(status=HTTPStatus.OK)
        response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
        response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
        response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
        return response

    security_headers = list(SECURITY_HEADERS)
    if production:
        security_headers.append(("Strict-Transport-Security", HSTS))

    def add_headers(response: Response) -> Response:
        headers = response.headers
        # One pass over the headers a view set, then one extend: Werkzeug's setdefault
        # searches the list and raises and catches a KeyError for every header it adds.
        present = {name.lower() for name, _ in headers.items()}
        missing = [(name, value) for name, value in security_headers if name.lower() not in present]
        if response.mimetype != "text/html" and "content-security-policy" not in present:
            missing.append(("Content-Security-Policy", API_CONTENT_SECURITY_POLICY))
        headers.extend(missing)
        if request.path.startswith("/api/"):
            # Tokens and users must not sit in shared caches.
            headers["Cache-Control"] = "no-store"
        origin = allowed_origin()
        if origin is not None:
            # Bearer tokens, not cookies: no credentials mode.
            headers["Access-Control-Allow-Origin"] = origin
            if origin != "*":
                headers.add("Vary", "Origin")
        return response

    app.register_error_handler(RequestEntityTooLarge, too_large)
    app.before_request(refuse_a_long_stream)
    app.before_request(answer_preflight)
    app.after_request(add_headers)
