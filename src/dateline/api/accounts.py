"""`/api/v1/session`, `/me` and `/users`: signing in and out, one's password, and accounts
(admins)."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from ..accounts import sessions
from ..accounts import users as accounts
from ..accounts.users import Role, User
from ..errors import Conflict
from ..web import auth
from ..web.deps import Db, Member
from ..web.json_body import api_router
from ..web.problems import COMMON_ERRORS, PROBLEM, THROTTLED, WRITE_ERRORS, Problem, Responses
from .models import (
    PasswordChange,
    SessionOut,
    SignIn,
    UserCreate,
    UserCreated,
    UserList,
    UserOut,
    UserUpdate,
)

router = api_router("accounts")
BUSY: Responses = {503: {"description": "Too many password checks at once; see Retry-After", **PROBLEM}}


def _user_out(user: User) -> dict[str, Any]:
    return {"username": user.username, "name": user.display_name, "role": user.role, "disabled": user.disabled}


@router.post("/session", response_model=SessionOut, responses=WRITE_ERRORS | THROTTLED | BUSY)
def sign_in(payload: SignIn, request: Request, response: Response) -> dict[str, Any]:
    """Sign in with a password: sets the session cookie; unsafe requests then need `csrf_token`."""
    token, session = auth.sign_in(request, payload.username, payload.password)
    auth.set_session_cookie(request, response, token)
    return {"user": _user_out(session.user), "csrf_token": session.csrf_token}


@router.delete("/session", status_code=204, responses=COMMON_ERRORS)
def sign_out(request: Request, db: Db) -> Response:
    """End this session (needs its CSRF token, as every unsafe request with a cookie does)."""
    session = auth.session_from_cookie(request)
    if session is None:
        raise Problem(401, "Not signed in.")
    if not auth.csrf_ok(session, request.headers.get(auth.CSRF_HEADER)):
        raise Problem(403, "This request needs the session's CSRF token (X-CSRF-Token header).")
    with db.write() as conn:
        sessions.end(conn, session.id)
    response = Response(status_code=204)
    auth.clear_session_cookie(response)
    return response


@router.post("/me/password", status_code=204, responses=WRITE_ERRORS | THROTTLED | BUSY)
def change_password(payload: PasswordChange, request: Request, user: Member) -> Response:
    """Change your password; your other sessions end. Wrong current passwords are throttled
    as sign-ins are."""
    current = auth.session_from_cookie(request)
    auth.change_password(request, user, payload.current_password, payload.new_password,
                         keep=current.id if current else None)
    return Response(status_code=204)


@router.get("/me", response_model=UserOut, responses=COMMON_ERRORS)
def me(user: Member) -> dict[str, Any]:
    return _user_out(user)


@router.get("/users", response_model=UserList, responses=COMMON_ERRORS)
def list_users(db: Db, user: Member) -> dict[str, Any]:
    user.require(Role.admin, "manage users")
    with db.read() as conn:
        return {"users": [_user_out(u) for u in accounts.list_users(conn)]}


@router.post("/users", status_code=201, response_model=UserCreated, responses=WRITE_ERRORS)
def create_user(payload: UserCreate, db: Db, user: Member) -> dict[str, Any]:
    """Create an account; without `password`, one is generated and shown once."""
    user.require(Role.admin, "manage users")
    password = payload.password or accounts.generate_password()
    with db.write() as conn:
        created = accounts.create_user(conn, payload.username, password, payload.role, payload.name)
    return {**_user_out(created), "password": None if payload.password else password}


@router.patch("/users/{username}", response_model=UserOut, responses=WRITE_ERRORS)
def update_user(username: str, payload: UserUpdate, db: Db, user: Member) -> dict[str, Any]:
    """Change a user's role, name, or disable the account (which revokes its tokens' use)."""
    user.require(Role.admin, "manage users")
    with db.write() as conn:
        target = accounts.get_user(conn, username)
        if target is None:
            raise Problem(404, f"No user named {username!r}.")
        if target.id == user.id and (payload.disabled or (payload.role and payload.role != Role.admin)):
            raise Conflict("You cannot disable yourself or lower your own role.")
        updated = accounts.update_user(
            conn, target, role=payload.role, disabled=payload.disabled, display_name=payload.name
        )
        if updated.disabled or not updated.role.at_least(target.role):
            sessions.end_all(conn, target.id)  # disabled or demoted: signed out everywhere, now
    return _user_out(updated)
