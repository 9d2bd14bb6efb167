from datetime import timedelta
from typing import Annotated

from django.conf import settings
from django.http import HttpRequest
from ninja import Form, Path, Query, Router, Status

from ..auth import BearerAuth, current_user
from ..items.schemas import PageParams
from ..problems import problem_responses
from ..rate_limit import account_email_throttle, login_throttle, registration_throttle
from .models import User, normalize_email
from .schemas import (
    AccessToken,
    AccountEmailRequest,
    AccountEmailRequested,
    EmailVerification,
    LoginForm,
    PasswordChange,
    PasswordReset,
    RefreshTokenRequest,
    UserPage,
    UserRead,
    UserRegister,
    UserUpdate,
)
from .selectors import user_list, user_read
from .services import (
    RESET_LINK_PURPOSE,
    VERIFY_LINK_PURPOSE,
    account_email_request,
    email_verify,
    password_change,
    password_reset_confirm,
    user_authenticate,
    user_register,
    user_update,
)
from .sessions import session_end, session_refresh, session_start

auth_router = Router(tags=["auth"])
users_router = Router(tags=["users"], auth=BearerAuth())
# The routes that manage users: a superuser's token, checked before anything else (auth.py).
superusers = BearerAuth(superuser=True)

# Ids are positive 64-bit integers; anything else is a 422, not a database error.
UserId = Annotated[int, Path(ge=1, le=2**63 - 1)]
# The errors each route answers with, as problem details, for the OpenAPI document.
route_errors = problem_responses(401, 403, 422)
user_errors = route_errors | problem_responses(404)
# A request body that is not even text (bytes that are not UTF-8) is a 400 before validation.
body_errors = problem_responses(400)


def throttle_key(request: HttpRequest) -> str:
    """What the login and registration throttles count by: the client's address (behind a proxy,
    the one TRUSTED_PROXIES lets it name), never the account."""
    return f"address:{request.META.get('REMOTE_ADDR', 'unknown')}"


@auth_router.post("/register", response={201: UserRead, **problem_responses(400, 409, 422, 429)})
def register(request: HttpRequest, payload: UserRegister) -> Status[User]:
    registration_throttle().take(throttle_key(request))
    user = user_register(
        email=payload.email, password=payload.password, full_name=payload.full_name
    )
    # Committed: the verification link is emailed.
    account_email_request(purpose=VERIFY_LINK_PURPOSE, email=user.email)
    return Status(201, user)


@auth_router.post(
    "/token", response={200: AccessToken, **problem_responses(400, 401, 403, 422, 429)}
)
def login(request: HttpRequest, form: Form[LoginForm]) -> AccessToken:
    """The OAuth2 password flow: a form with username (the email) and password."""
    throttle = login_throttle()
    # Counted before the password is checked and given back when it is right (rate_limit.py), by
    # address: a stranger failing for someone's account cannot lock its owner out.
    key = throttle_key(request)
    with throttle.attempt(key):
        user = user_authenticate(
            email=form.username,
            password=form.password,
            require_verified_email=settings.LOGIN_REQUIRES_VERIFIED_EMAIL,
        )
    refresh_token = session_start(user=user, lifetime=refresh_lifetime())
    return _tokens(user, refresh_token)


@auth_router.post("/refresh", response={200: AccessToken, **problem_responses(400, 401, 422)})
def refresh(request: HttpRequest, payload: RefreshTokenRequest) -> AccessToken:
    """A new access token, and the next refresh token: the one sent is used up. Sending a used
    one again revokes its session (both tokens) and is a 401."""
    user, refresh_token = session_refresh(token=payload.refresh_token, lifetime=refresh_lifetime())
    return _tokens(user, refresh_token)


@auth_router.post("/logout", response={204: None, **problem_responses(400, 422)})
def logout(request: HttpRequest, payload: RefreshTokenRequest) -> Status[None]:
    """End the session the refresh token belongs to; its access tokens expire on their own."""
    session_end(token=payload.refresh_token)
    return Status(204, None)


@auth_router.post(
    "/password-reset",
    response={202: AccountEmailRequested, **problem_responses(400, 422, 429)},
)
def request_password_reset(
    request: HttpRequest, payload: AccountEmailRequest
) -> Status[AccountEmailRequested]:
    """Email a reset link to the address, if an account has it. The answer is the same either
    way, and so is the work done before it (the email goes out after it)."""
    return _account_email(request, RESET_LINK_PURPOSE, payload.email)


@auth_router.post(
    "/password-reset/confirm", response={204: None, **problem_responses(400, 401, 422, 429)}
)
def reset_password(request: HttpRequest, payload: PasswordReset) -> Status[None]:
    """Set a new password with the token of a reset link, which is then used up (a 401 when it
    is malformed, expired or used, counted like a failed login). Every session of the account
    ends: the user logs in with the new password."""
    with login_throttle().attempt(throttle_key(request)):
        password_reset_confirm(token=payload.token, new_password=payload.new_password)
    return Status(204, None)


@auth_router.post("/verify-email", response={204: None, **problem_responses(400, 401, 422, 429)})
def verify_email(request: HttpRequest, payload: EmailVerification) -> Status[None]:
    """Mark the address verified with the token of the link sent to it (a 401 when the token is
    malformed or expired, counted like a failed login; a second time, nothing changes)."""
    with login_throttle().attempt(throttle_key(request)):
        email_verify(token=payload.token)
    return Status(204, None)


@auth_router.post(
    "/verify-email/resend",
    response={202: AccountEmailRequested, **problem_responses(400, 422, 429)},
)
def request_verification_email(
    request: HttpRequest, payload: AccountEmailRequest
) -> Status[AccountEmailRequested]:
    """Email a new verification link to the address, if an account has it unverified. The same
    answer either way, after the same work."""
    return _account_email(request, VERIFY_LINK_PURPOSE, payload.email)


def _account_email(request: HttpRequest, purpose: str, email: str) -> Status[AccountEmailRequested]:
    """Count the request by client and by address, then hand the email off: for every address
    the same work, and the same answer."""
    throttle = account_email_throttle()
    throttle.take(throttle_key(request))
    throttle.take(f"email:{normalize_email(email)}")
    account_email_request(purpose=purpose, email=email)
    return Status(202, AccountEmailRequested())


def refresh_lifetime() -> timedelta:
    return timedelta(days=settings.REFRESH_TOKEN_EXPIRE_DAYS)


def _tokens(user: User, refresh_token: str) -> AccessToken:
    return AccessToken.issue(
        user_id=user.pk,
        generation=user.token_generation,
        refresh_token=refresh_token,
        secret_key=settings.SECRET_KEY,
        minutes=settings.ACCESS_TOKEN_EXPIRE_MINUTES,
        days=settings.REFRESH_TOKEN_EXPIRE_DAYS,
    )


@users_router.get("/me", response={200: UserRead, **problem_responses(401)})
def read_current_user(request: HttpRequest) -> User:
    return current_user(request)


@users_router.post(
    "/me/password", response={200: AccessToken, **problem_responses(400, 401, 403, 422, 429)}
)
def change_password(request: HttpRequest, payload: PasswordChange) -> AccessToken:
    """Set a new password, the current one as proof (a wrong one is a 403, counted like a failed
    login). Every session of the account ends, access tokens included; the answer is a new one."""
    user = current_user(request)
    with login_throttle().attempt(throttle_key(request)):
        password_change(
            user=user,
            current_password=payload.current_password,
            new_password=payload.new_password,
        )
    return _tokens(user, session_start(user=user, lifetime=refresh_lifetime()))


@users_router.get("", auth=superusers, response={200: UserPage, **route_errors})
def list_users(request: HttpRequest, page: Query[PageParams]) -> UserPage:
    users, total = user_list(limit=page.limit, offset=page.offset)
    return UserPage.of(users, total, page)


@users_router.get("/{user_id}", auth=superusers, response={200: UserRead, **user_errors})
def read_user(request: HttpRequest, user_id: UserId) -> User:
    return user_read(user_id=user_id)


@users_router.patch(
    "/{user_id}",
    auth=superusers,
    response={200: UserRead, **user_errors, **problem_responses(409), **body_errors},
)
def update_user(request: HttpRequest, user_id: UserId, changes: UserUpdate) -> User:
    return user_update(
        actor=current_user(request),
        user_id=user_id,
        is_active=changes.is_active,
        is_superuser=changes.is_superuser,
    )
