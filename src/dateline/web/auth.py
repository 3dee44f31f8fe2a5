"""Who is asking: an API token, or a newsroom session cookie (with its CSRF token).

Scripts send `Authorization: Bearer <token>`. The newsroom web app rides on its session
cookie; because a browser sends cookies on its own, every unsafe request made with one must
also carry the session's CSRF token (`X-CSRF-Token` header, or `csrf_token` form field).
"""

from __future__ import annotations

import hmac
from datetime import timedelta

from fastapi import Request, Response

from ..accounts import sessions
from ..accounts import users as accounts
from ..accounts.users import User
from ..db import Database
from .problems import Problem

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def session_from_cookie(request: Request) -> sessions.Session | None:
    """The request's newsroom session, if its cookie names a live one (cached per request)."""
    if hasattr(request.state, "session"):
        cached: sessions.Session | None = request.state.session
        return cached
    found = None
    token = request.cookies.get(sessions.COOKIE)
    if token:
        db: Database = request.app.state.db
        idle = timedelta(minutes=request.app.state.settings.session_idle_minutes)
        with db.read() as conn:
            found, due = sessions.lookup(conn, token, idle)
        if found is not None and due:
            with db.write() as conn:
                sessions.touch(conn, found.id)
    request.state.session = found
    return found


def csrf_ok(session: sessions.Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf_token.encode(), (sent or "").encode())


def user_for_request(request: Request, bearer: str | None) -> User | None:
    """The signed-in user, or None for an anonymous reader. Bad credentials are a 401."""
    if bearer is not None:
        with request.app.state.db.read() as conn:
            user = accounts.user_for_token(conn, bearer)
        if user is None:
            raise Problem(
                401, "The API token is unknown, revoked, or its account is disabled.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return user
    session = session_from_cookie(request)
    if session is None:
        return None
    if request.method not in SAFE_METHODS and not csrf_ok(session, request.headers.get(CSRF_HEADER)):
        raise Problem(403, "This request needs the session's CSRF token (X-CSRF-Token header).")
    return session.user


def sign_in(request: Request, username: str, password: str) -> tuple[str, sessions.Session]:
    """Check a password under the throttle and start a new session; 401 or 429 otherwise."""
    db: Database = request.app.state.db
    settings = request.app.state.settings
    name, ip = username.strip().lower()[:64], client_ip(request)
    with db.read() as conn:
        wait = sessions.wait_before_trying(conn, name, ip)
    if wait:
        raise Problem(
            429, f"Too many failed sign-ins; try again in {wait} seconds.",
            headers={"Retry-After": str(wait)},
        )
    with db.read() as conn:
        user = accounts.authenticate(conn, name, password[:1024])
    if user is None:
        with db.write() as conn:
            sessions.record_failure(conn, name, ip)
        raise Problem(401, "The username or password is wrong.")
    with db.write() as conn:
        sessions.clear_failures(conn, name, ip)
        return sessions.start(
            conn, user, ip=ip, user_agent=request.headers.get("user-agent", ""),
            max_age=timedelta(hours=settings.session_max_hours),
        )


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    settings = request.app.state.settings
    secure = request.url.scheme == "https" or settings.public_url.startswith("https://")
    response.set_cookie(
        sessions.COOKIE, token, max_age=settings.session_max_hours * 3600, httponly=True,
        samesite="lax", secure=secure, path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(sessions.COOKIE, path="/")
