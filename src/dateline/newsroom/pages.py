"""What every newsroom page shares: the session behind it, its CSRF check, and rendering.

Pages are server-rendered; the desk's composer and live list (`static/newsroom.js`) talk to
the JSON API with the session cookie and its CSRF token. Every form carries a CSRF token;
the sign-in form, before any session exists, uses a double-submit cookie.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.exceptions import HTTPException

from ..accounts import sessions
from ..accounts.users import Role
from ..db import Database
from ..web import auth
from ..web.templates import templates

NO_STORE = {"Cache-Control": "no-store"}


class SignInRequired(Exception):
    """Raised by pages for anonymous visitors; answered with a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def sign_in_redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return RedirectResponse(f"/newsroom/login?next={quote(exc.next_path)}", status_code=303)


def db(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


def session_of(request: Request) -> sessions.Session:
    """The page's session; anonymous visitors are sent to sign in."""
    session = auth.session_from_cookie(request)
    if session is None:
        raise SignInRequired(request.url.path)
    return session


def check_form_csrf(session: sessions.Session, token: str) -> None:
    if not auth.csrf_ok(session, token):
        raise HTTPException(403, "This form has expired or did not come from this site; reload and try again.")


def editor_form(request: Request, csrf_token: str, action: str) -> sessions.Session:
    """The session behind a form post that only editors may make."""
    session = session_of(request)
    check_form_csrf(session, csrf_token)
    session.user.require(Role.editor, action)
    return session


def render(request: Request, name: str, session: sessions.Session | None, status: int = 200,
           **context: Any) -> HTMLResponse:
    context.update(
        site_name=request.app.state.settings.site_name,
        session=session,
        me=session.user if session else None,
        csrf_token=session.csrf_token if session else "",
    )
    return templates.TemplateResponse(request, f"newsroom/{name}", context, status_code=status, headers=NO_STORE)
