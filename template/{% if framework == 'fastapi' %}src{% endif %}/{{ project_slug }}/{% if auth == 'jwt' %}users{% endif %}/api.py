from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request, status

from ..auth import CurrentUser
from ..dependencies import LoginThrottleDep, RegistrationThrottleDep, SessionDep, SettingsDep
from ..problems import problem_responses
from ..security import create_access_token
from .schemas import AccessToken, LoginForm, UserRead, UserRegister
from .services import user_authenticate, user_register

auth_router = APIRouter(prefix="/auth", tags=["auth"])
users_router = APIRouter(prefix="/users", tags=["users"], responses=problem_responses(401))


@auth_router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(400, 409, 413, 422, 429),
)
async def register(
    request: Request,
    payload: UserRegister,
    session: SessionDep,
    throttle: RegistrationThrottleDep,
) -> UserRead:
    await throttle.take_async(f"address:{request.client.host if request.client else 'unknown'}")
    user = await user_register(
        session=session,
        email=payload.email,
        password=payload.password,
        full_name=payload.full_name,
    )
    return UserRead.model_validate(user)


@auth_router.post("/token", responses=problem_responses(400, 401, 413, 422, 429))
async def login(
    request: Request,
    form: Annotated[LoginForm, Form()],
    session: SessionDep,
    settings: SettingsDep,
    throttle: LoginThrottleDep,
) -> AccessToken:
    # Counted before the password is checked and given back when it is right (rate_limit.py):
    # per client address (behind a proxy, the one TRUSTED_PROXIES lets it name), never per
    # account, so a stranger failing for someone's account cannot lock them out.
    key = f"address:{request.client.host if request.client else 'unknown'}"
    async with throttle.attempt_async(key):
        user = await user_authenticate(session=session, email=form.username, password=form.password)
    expires_in = timedelta(minutes=settings.access_token_expire_minutes)
    access_token = create_access_token(
        subject=user.id, secret_key=settings.signing_key, expires_in=expires_in
    )
    return AccessToken(access_token=access_token, expires_in=int(expires_in.total_seconds()))


@users_router.get("/me")
async def read_current_user(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)
