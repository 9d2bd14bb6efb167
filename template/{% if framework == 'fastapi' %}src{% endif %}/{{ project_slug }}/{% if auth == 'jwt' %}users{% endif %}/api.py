from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request, status
from sqlalchemy.ext.asyncio import AsyncSession

from ..auth import CurrentSuperuser, CurrentUser
from ..dependencies import (
    LoginThrottleDep,
    PageDep,
    RegistrationThrottleDep,
    SessionDep,
    SettingsDep,
)
from ..problems import problem_responses
from ..settings import Settings
from .models import User
from .schemas import (
    AccessToken,
    LoginForm,
    PasswordChange,
    RefreshTokenRequest,
    UserPage,
    UserRead,
    UserRegister,
    UserUpdate,
)
from .selectors import user_list, user_read
from .services import password_change, user_authenticate, user_register, user_update
from .sessions import session_end, session_refresh, session_start

auth_router = APIRouter(prefix="/auth", tags=["auth"])
users_router = APIRouter(prefix="/users", tags=["users"], responses=problem_responses(401))

# Ids are the tables' 64-bit keys: anything outside that range is a 422, never a database error.
# The routes say `{user_id:int}`, digits only, so that `PATCH /users/me` is the 405 of the route
# that is there, not a 422 of these (another word is a 404, as in the other flavours).
UserId = Annotated[int, Path(ge=1, le=2**63 - 1)]
# The routes that manage accounts: a signed-in user who is not a superuser gets a 403.
manage_responses = problem_responses(403, 422)


def throttle_key(request: Request) -> str:
    """What the login and registration throttles count by: the client's address (behind a proxy,
    the one TRUSTED_PROXIES lets it name), never the account."""
    return f"address:{request.client.host if request.client else 'unknown'}"


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
    await throttle.take_async(throttle_key(request))
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
    # Counted before the password is checked and given back when it is right (rate_limit.py), by
    # address: a stranger failing for someone's account cannot lock its owner out.
    key = throttle_key(request)
    async with throttle.attempt_async(key):
        user = await user_authenticate(session=session, email=form.username, password=form.password)
    return await _new_session(session, user, settings)


@auth_router.post("/refresh", responses=problem_responses(400, 401, 413, 422))
async def refresh(
    payload: RefreshTokenRequest, session: SessionDep, settings: SettingsDep
) -> AccessToken:
    """A new access token, and the next refresh token: the one sent is used up. Sending a used
    one again revokes its session (both tokens) and is a 401."""
    user, refresh_token = await session_refresh(
        session=session,
        token=payload.refresh_token,
        lifetime=timedelta(days=settings.refresh_token_expire_days),
    )
    return _tokens(user, refresh_token, settings)


@auth_router.post(
    "/logout", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(400, 413, 422)
)
async def logout(payload: RefreshTokenRequest, session: SessionDep) -> None:
    """End the session the refresh token belongs to; its access tokens expire on their own."""
    await session_end(session=session, token=payload.refresh_token)


async def _new_session(session: AsyncSession, user: User, settings: Settings) -> AccessToken:
    """The tokens of a new session of the user's: a login, or the one a password change opens."""
    lifetime = timedelta(days=settings.refresh_token_expire_days)
    refresh_token = await session_start(session=session, user=user, lifetime=lifetime)
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


@users_router.get("/me")
async def read_current_user(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)


@users_router.post("/me/password", responses=problem_responses(400, 403, 413, 422, 429))
async def change_password(
    request: Request,
    payload: PasswordChange,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    throttle: LoginThrottleDep,
) -> AccessToken:
    """Set a new password, the current one as proof (a wrong one is a 403, counted like a failed
    login). Every session of the account ends, access tokens included; the answer is a new one."""
    key = throttle_key(request)
    async with throttle.attempt_async(key):
        await password_change(
            session=session,
            user=user,
            current_password=payload.current_password,
            new_password=payload.new_password,
        )
    return await _new_session(session, user, settings)


@users_router.get("", responses=manage_responses)
async def list_users(session: SessionDep, superuser: CurrentSuperuser, page: PageDep) -> UserPage:
    users, total = await user_list(session=session, limit=page.limit, offset=page.offset)
    return UserPage.of(users, total, page)


@users_router.get("/{user_id:int}", responses=manage_responses | problem_responses(404))
async def read_user(user_id: UserId, session: SessionDep, superuser: CurrentSuperuser) -> UserRead:
    return UserRead.model_validate(await user_read(session=session, user_id=user_id))


@users_router.patch(
    "/{user_id:int}", responses=manage_responses | problem_responses(400, 404, 409, 413)
)
async def update_user(
    user_id: UserId, payload: UserUpdate, session: SessionDep, superuser: CurrentSuperuser
) -> UserRead:
    """Deactivate or reactivate an account, or make it a superuser or not. A deactivated user's
    tokens stop working at once."""
    user = await user_update(
        session=session,
        actor=superuser,
        user_id=user_id,
        is_active=payload.is_active,
        is_superuser=payload.is_superuser,
    )
    return UserRead.model_validate(user)
