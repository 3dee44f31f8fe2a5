"""Who is asking: an API token, or a newsroom session cookie (with its CSRF token).

Scripts send `Authorization: Bearer <token>`. The newsroom web app rides on its session
cookie; because a browser sends cookies on its own, every unsafe request made with one must
also carry the session's CSRF token (`X-CSRF-Token` header, or `csrf_token` form field).
"""

from __future__ import annotations

import hmac
from datetime import timedelta

from fastapi import Request, Response

from ..accounts import passwords, sessions
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
        db: Database = request.app.state.db
        with db.read() as conn:
            found = accounts.token_user(conn, bearer)
        if found is None:
            raise Problem(
                401, "The API token is unknown, revoked, or its account is disabled.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        user, token_id, due = found
        request.state.token_id = token_id
        if due:
            with db.write() as conn:
                accounts.touch_token(conn, token_id)
        return user
    session = session_from_cookie(request)
    if session is None:
        return None
    if request.method not in SAFE_METHODS and not csrf_ok(session, request.headers.get(CSRF_HEADER)):
        raise Problem(403, "This request needs the session's CSRF token (X-CSRF-Token header).")
    return session.user


def _password_work(request: Request) -> passwords.PasswordWork:
    slots: int = request.app.state.settings.password_hash_slots
    return passwords.work(slots)


def check_password(request: Request, username: str, password: str) -> User | None:
    """One password guess, under the throttle: counted before it is checked (429 beyond a
    limit, with no hashing at all), checked in one of the few slots for password work (503
    when they are all taken). The user if the password is right and the account enabled;
    the caller then forgets the guess with `sessions.clear_failures` in its write."""
    db: Database = request.app.state.db
    key, ip = sessions.throttle_key(username), sessions.clean_address(client_ip(request))
    work = _password_work(request)
    try:
        with work.admitted():
            with db.write() as conn:
                wait = sessions.count_attempt(conn, key, ip)
            if wait:
                raise Problem(
                    429, f"Too many failed sign-ins; try again in {wait} seconds.",
                    headers={"Retry-After": str(wait)},
                )
            with db.read() as conn:
                stored, user = accounts.password_of(conn, key)
            right = work.verify(stored, password[: accounts.MAX_PASSWORD_LENGTH])
    except passwords.PasswordWorkBusy as busy:
        raise Problem(503, str(busy), headers={"Retry-After": str(passwords.RETRY_AFTER_SECONDS)}) from None
    if not right or user is None or user.disabled:
        return None
    return user


def sign_in(request: Request, username: str, password: str) -> tuple[str, sessions.Session]:
    """Check a password under the throttle and start a new session; 401, 429 or 503 otherwise."""
    user = check_password(request, username, password)
    if user is None:
        raise Problem(401, "The username or password is wrong.")
    db: Database = request.app.state.db
    settings = request.app.state.settings
    ip = sessions.clean_address(client_ip(request))
    with db.write() as conn:
        sessions.clear_failures(conn, user.username, ip)
        return sessions.start(
            conn, user, ip=ip, user_agent=request.headers.get("user-agent", ""),
            max_age=timedelta(hours=settings.session_max_hours),
        )


def change_password(request: Request, user: User, current: str, new: str, keep: str | None) -> None:
    """A password change: the current password is a guess like a sign-in's (throttled the
    same), then the new one is stored and the user's other sessions end (but `keep`)."""
    accounts.check_password_rules(new)  # before the guess is counted: a 422 costs no try
    if check_password(request, user.username, current) is None:
        raise Problem(403, "The current password is wrong.")
    new_hash = _password_work(request).hash(new)
    db: Database = request.app.state.db
    with db.write() as conn:
        sessions.clear_failures(conn, user.username, sessions.clean_address(client_ip(request)))
        accounts.store_password_hash(conn, user, new_hash)
        sessions.end_all(conn, user.id, keep=keep)


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    settings = request.app.state.settings
    secure = request.url.scheme == "https" or settings.public_url.startswith("https://")
    response.set_cookie(
        sessions.COOKIE, token, max_age=settings.session_max_hours * 3600, httponly=True,
        samesite="lax", secure=secure, path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(sessions.COOKIE, path="/")
