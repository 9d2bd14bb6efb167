from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest
from ninja import Form, Router, Status

from ..auth import BearerAuth, current_user
from ..problems import problem_responses
from ..rate_limit import login_throttle, registration_throttle
from ..security import create_access_token
from .models import User
from .schemas import AccessToken, LoginForm, UserRead, UserRegister
from .services import user_authenticate, user_register

auth_router = Router(tags=["auth"])
users_router = Router(tags=["users"], auth=BearerAuth())


@auth_router.post("/register", response={201: UserRead, **problem_responses(400, 409, 422, 429)})
def register(request: HttpRequest, payload: UserRegister) -> Status[User]:
    registration_throttle().take(f"address:{request.META.get('REMOTE_ADDR', 'unknown')}")
    user = user_register(
        email=payload.email, password=payload.password, full_name=payload.full_name
    )
    return Status(201, user)


@auth_router.post("/token", response={200: AccessToken, **problem_responses(400, 401, 422, 429)})
def login(request: HttpRequest, form: Form[LoginForm]) -> AccessToken:
    """The OAuth2 password flow: a form with username (the email) and password."""
    throttle = login_throttle()
    # Counted before the password is checked and given back when it is right (rate_limit.py):
    # per client address (behind a proxy, the one TRUSTED_PROXIES lets it name), never per
    # account, so a stranger failing for someone's account cannot lock them out.
    key = f"address:{request.META.get('REMOTE_ADDR', 'unknown')}"
    with throttle.attempt(key):
        user = user_authenticate(email=form.username, password=form.password)
    expires_in = timedelta(minutes=settings.ACCESS_TOKEN_EXPIRE_MINUTES)
    access_token = create_access_token(
        subject=user.id, secret_key=settings.SECRET_KEY, expires_in=expires_in
    )
    return AccessToken(access_token=access_token, expires_in=int(expires_in.total_seconds()))


@users_router.get("/me", response={200: UserRead, **problem_responses(401)})
def read_current_user(request: HttpRequest) -> User:
    return current_user(request)
