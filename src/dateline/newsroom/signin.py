"""Signing in and out of the newsroom, and changing one's password."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.exceptions import HTTPException

from ..accounts import sessions
from ..errors import Refused
from ..web import auth
from ..web.problems import Problem
from .pages import check_form_csrf, db, render, session_of

router = APIRouter(prefix="/newsroom", include_in_schema=False)
LOGIN_CSRF_COOKIE = "dateline_login_csrf"


def _safe_next(target: str | None) -> str:
    """Only our own newsroom pages: never an open redirect elsewhere."""
    if target and target.startswith("/newsroom") and "//" not in target and "\\" not in target:
        return target
    return "/newsroom"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", None, next=_safe_next(next), login_csrf=token, error=None)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/newsroom/login",
                        secure=request.url.scheme == "https")
    return response


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request, username: Annotated[str, Form(max_length=64)], password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=100)] = "", next: Annotated[str, Form(max_length=500)] = "/newsroom",
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf_token.encode()):
        raise HTTPException(403, "The sign-in form has expired; reload the page and try again.")
    try:
        token, _ = auth.sign_in(request, username, password)
    except Problem as problem:
        response: Response = render(request, "login.html", None, status=problem.status, next=_safe_next(next),
                                    login_csrf=csrf_token, error=problem.detail, username=username)
        response.headers.update(problem.headers)
        return response
    response = RedirectResponse(_safe_next(next), status_code=303)
    auth.set_session_cookie(request, response, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/newsroom/login")
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form(max_length=100)] = "") -> Response:
    session = auth.session_from_cookie(request)
    if session is not None:
        check_form_csrf(session, csrf_token)
        with db(request).write() as conn:
            sessions.end(conn, session.id)
    response = RedirectResponse("/newsroom/login", status_code=303)
    auth.clear_session_cookie(response)
    return response


@router.get("/password", response_class=HTMLResponse)
def password_form(request: Request) -> Response:
    return render(request, "password.html", session_of(request), error=None, done=False)


@router.post("/password", response_class=HTMLResponse)
def change_password(
    request: Request, current_password: Annotated[str, Form(max_length=1024)],
    new_password: Annotated[str, Form(max_length=1024)], csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    session = session_of(request)
    check_form_csrf(session, csrf_token)
    try:
        auth.change_password(request, session.user, current_password, new_password, keep=session.id)
    except Refused as refused:
        return render(request, "password.html", session, status=refused.status, error=str(refused), done=False)
    except Problem as problem:  # a wrong current password, throttled, or too busy
        response: Response = render(request, "password.html", session, status=problem.status,
                                    error=problem.detail, done=False)
        response.headers.update(problem.headers)
        return response
    return render(request, "password.html", session, error=None, done=True)
