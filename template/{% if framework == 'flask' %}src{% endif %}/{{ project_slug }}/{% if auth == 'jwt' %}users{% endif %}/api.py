"""The auth and users blueprints, and the one superusers manage accounts with."""

from datetime import timedelta

from apiflask import APIBlueprint
from flask import Response, current_app, request

from ..auth import BEARER_AUTH, current_user, require_superuser, require_user
from ..database import get_session
from ..items.schemas import PageParams
from ..rate_limit import AccountEmailThrottle, LoginThrottle, RegistrationThrottle
from ..settings import Settings, current_settings
from .models import User
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
from .selectors import normalize_email, user_list, user_read
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

auth_bp = APIBlueprint("auth", __name__, url_prefix="/auth", tag="auth")
users_bp = APIBlueprint("users", __name__, url_prefix="/users", tag="users")
# Superusers only: the same paths as users_bp (/users, /users/<id>), with its own check.
manage_users_bp = APIBlueprint("manage_users", __name__, url_prefix="/users", tag="users")


def login_throttle() -> LoginThrottle:
    throttle: LoginThrottle = current_app.extensions["login_throttle"]
    return throttle


users_bp.before_request(require_user)
# Anyone signed in who is not a superuser gets a 403, before the request is validated.
manage_users_bp.before_request(require_superuser)


def throttle_key() -> str:
    """What the login and registration throttles count by: the client's address (behind a proxy,
    the one TRUSTED_PROXIES lets it name), never the account."""
    return f"address:{request.remote_addr or 'unknown'}"


@auth_bp.post("/register")
@auth_bp.input(UserRegister, arg_name="payload")
@auth_bp.output(UserRead, status_code=201)
@auth_bp.doc(responses={409: "Conflict", 429: "Too Many Requests"})
def register(payload: UserRegister) -> UserRead:
    throttle: RegistrationThrottle = current_app.extensions["registration_throttle"]
    throttle.take(throttle_key())
    user = user_register(
        session=get_session(),
        email=payload.email,
        password=payload.password,
        full_name=payload.full_name,
    )
    # Committed: the verification link is emailed.
    account_email_request(purpose=VERIFY_LINK_PURPOSE, email=user.email)
    return UserRead.model_validate(user)


@auth_bp.post("/token")
@auth_bp.input(LoginForm, location="form", arg_name="form")
@auth_bp.output(AccessToken)
@auth_bp.doc(responses={401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests"})
def login(form: LoginForm) -> AccessToken:
    throttle = login_throttle()
    # Counted before the password is checked and given back when it is right (rate_limit.py), by
    # address: a stranger failing for someone's account cannot lock its owner out.
    key = throttle_key()
    with throttle.attempt(key):
        user = user_authenticate(
            session=get_session(),
            email=form.username,
            password=form.password,
            require_verified_email=current_settings().login_requires_verified_email,
        )
    return _new_session(user)


@auth_bp.post("/refresh")
@auth_bp.input(RefreshTokenRequest, arg_name="payload")
@auth_bp.output(AccessToken)
@auth_bp.doc(responses={401: "Unauthorized"})
def refresh(payload: RefreshTokenRequest) -> AccessToken:
    """A new access token, and the next refresh token: the one sent is used up. Sending a used
    one again revokes its session (both tokens) and is a 401."""
    settings = current_settings()
    user, refresh_token = session_refresh(
        session=get_session(),
        token=payload.refresh_token,
        lifetime=timedelta(days=settings.refresh_token_expire_days),
    )
    return _tokens(user, refresh_token, settings)


@auth_bp.post("/logout")
@auth_bp.input(RefreshTokenRequest, arg_name="payload")
@auth_bp.output({}, status_code=204)
def logout(payload: RefreshTokenRequest) -> Response:
    """End the session the refresh token belongs to; its access tokens expire on their own."""
    session_end(session=get_session(), token=payload.refresh_token)
    return Response(status=204)


@auth_bp.post("/password-reset")
@auth_bp.input(AccountEmailRequest, arg_name="payload")
@auth_bp.output(AccountEmailRequested, status_code=202)
@auth_bp.doc(responses={429: "Too Many Requests"})
def request_password_reset(payload: AccountEmailRequest) -> AccountEmailRequested:
    """Email a reset link to the address, if an account has it. The answer is the same either
    way, and so is the work done before it (the email goes out after it)."""
    return _account_email(RESET_LINK_PURPOSE, payload.email)


@auth_bp.post("/password-reset/confirm")
@auth_bp.input(PasswordReset, arg_name="payload")
@auth_bp.output({}, status_code=204)
@auth_bp.doc(responses={401: "Unauthorized", 429: "Too Many Requests"})
def reset_password(payload: PasswordReset) -> Response:
    """Set a new password with the token of a reset link, which is then used up (a 401 when it
    is malformed, expired or used, counted like a failed login). Every session of the account
    ends: the user logs in with the new password."""
    with login_throttle().attempt(throttle_key()):
        password_reset_confirm(
            session=get_session(),
            token=payload.token,
            new_password=payload.new_password,
            secret_key=current_settings().signing_key,
        )
    return Response(status=204)


@auth_bp.post("/verify-email")
@auth_bp.input(EmailVerification, arg_name="payload")
@auth_bp.output({}, status_code=204)
@auth_bp.doc(responses={401: "Unauthorized", 429: "Too Many Requests"})
def verify_email(payload: EmailVerification) -> Response:
    """Mark the address verified with the token of the link sent to it (a 401 when the token is
    malformed or expired, counted like a failed login; a second time, nothing changes)."""
    with login_throttle().attempt(throttle_key()):
        email_verify(
            session=get_session(), token=payload.token, secret_key=current_settings().signing_key
        )
    return Response(status=204)


@auth_bp.post("/verify-email/resend")
@auth_bp.input(AccountEmailRequest, arg_name="payload")
@auth_bp.output(AccountEmailRequested, status_code=202)
@auth_bp.doc(responses={429: "Too Many Requests"})
def request_verification_email(payload: AccountEmailRequest) -> AccountEmailRequested:
    """Email a new verification link to the address, if an account has it unverified. The same
    answer either way, after the same work."""
    return _account_email(VERIFY_LINK_PURPOSE, payload.email)


def _account_email(purpose: str, email: str) -> AccountEmailRequested:
    """Count the request by client and by address, then hand the email off: for every address
    the same work, and the same answer."""
    throttle: AccountEmailThrottle = current_app.extensions["account_email_throttle"]
    throttle.take(throttle_key())
    throttle.take(f"email:{normalize_email(email)}")
    account_email_request(purpose=purpose, email=email)
    return AccountEmailRequested()


def _new_session(user: User) -> AccessToken:
    """The tokens of a new session of the user's: a login, or the one a password change opens."""
    settings = current_settings()
    refresh_token = session_start(
        session=get_session(),
        user=user,
        lifetime=timedelta(days=settings.refresh_token_expire_days),
    )
    return _tokens(user, refresh_token, settings)


def _tokens(user: User, refresh_token: str, settings: Settings) -> AccessToken:
    return AccessToken.issue(
        user_id=user.id,
        generation=user.token_generation,
        refresh_token=refresh_token,
        secret_key=settings.signing_key,
        minutes=settings.access_token_expire_minutes,
        days=settings.refresh_token_expire_days,
    )


@users_bp.get("/me")
@users_bp.output(UserRead)
@users_bp.doc(security=BEARER_AUTH)
def read_current_user() -> UserRead:
    return UserRead.model_validate(current_user())


@users_bp.post("/me/password")
@users_bp.input(PasswordChange, arg_name="payload")
@users_bp.output(AccessToken)
@users_bp.doc(security=BEARER_AUTH, responses={403: "Forbidden", 429: "Too Many Requests"})
def change_password(payload: PasswordChange) -> AccessToken:
    """Set a new password, the current one as proof (a wrong one is a 403, counted like a failed
    login). Every session of the account ends, access tokens included; the answer is a new one."""
    user = current_user()
    with login_throttle().attempt(throttle_key()):
        password_change(
            session=get_session(),
            user=user,
            current_password=payload.current_password,
            new_password=payload.new_password,
        )
    return _new_session(user)


@manage_users_bp.get("")
@manage_users_bp.input(PageParams, location="query", arg_name="page")
@manage_users_bp.output(UserPage)
@manage_users_bp.doc(security=BEARER_AUTH, responses={403: "Forbidden"})
def list_users(page: PageParams) -> UserPage:
    users, total = user_list(session=get_session(), limit=page.limit, offset=page.offset)
    return UserPage.of(users, total, page)


@manage_users_bp.get("/<digits_id:user_id>")
@manage_users_bp.output(UserRead)
@manage_users_bp.doc(security=BEARER_AUTH, responses={403: "Forbidden", 404: "Not Found"})
def read_user(user_id: int) -> UserRead:
    return UserRead.model_validate(user_read(session=get_session(), user_id=user_id))


@manage_users_bp.patch("/<digits_id:user_id>")
@manage_users_bp.input(UserUpdate, arg_name="changes")
@manage_users_bp.output(UserRead)
@manage_users_bp.doc(
    security=BEARER_AUTH, responses={403: "Forbidden", 404: "Not Found", 409: "Conflict"}
)
def update_user(user_id: int, changes: UserUpdate) -> UserRead:
    """Deactivate or reactivate an account, or make it a superuser or not. A deactivated user's
    tokens stop working at once."""
    user = user_update(
        session=get_session(),
        actor=current_user(),
        user_id=user_id,
        is_active=changes.is_active,
        is_superuser=changes.is_superuser,
    )
    return UserRead.model_validate(user)
