"""The newsroom web app: sign in, the dashboard, and the desk where a live story is run.

Pages are server-rendered; the desk's composer and live list (`static/newsroom.js`) talk to
the JSON API with the session cookie and its CSRF token. Every form carries a CSRF token;
the sign-in form, before any session exists, uses a double-submit cookie.
"""

from __future__ import annotations

import difflib
import hmac
import json
import secrets
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import Connection
from starlette.exceptions import HTTPException

from . import accounts, auth, entries, sessions, stories
from .accounts import Role
from .problems import Problem
from .push import outbox
from .reader import templates

router = APIRouter(prefix="/newsroom", include_in_schema=False)
LOGIN_CSRF_COOKIE = "dateline_login_csrf"
NO_STORE = {"Cache-Control": "no-store"}


class SignInRequired(Exception):
    """Raised by pages for anonymous visitors; answered with a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def _session(request: Request) -> sessions.Session:
    session = auth.session_from_cookie(request)
    if session is None:
        raise SignInRequired(request.url.path)
    return session


def _check_form_csrf(session: sessions.Session, token: str) -> None:
    if not auth.csrf_ok(session, token):
        raise HTTPException(403, "This form has expired or did not come from this site; reload and try again.")


def _page(request: Request, name: str, session: sessions.Session | None, status: int = 200, **context: Any) -> HTMLResponse:
    context.update(
        site_name=request.app.state.settings.site_name,
        session=session,
        me=session.user if session else None,
        csrf_token=session.csrf_token if session else "",
    )
    return templates.TemplateResponse(request, f"newsroom/{name}", context, status_code=status, headers=NO_STORE)


def _safe_next(target: str | None) -> str:
    """Only our own newsroom pages: never an open redirect elsewhere."""
    if target and target.startswith("/newsroom") and "//" not in target and "\\" not in target:
        return target
    return "/newsroom"


# --- signing in and out -------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = _page(request, "login.html", None, next=_safe_next(next), login_csrf=token, error=None)
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
        response = _page(request, "login.html", None, status=problem.status, next=_safe_next(next),
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
        _check_form_csrf(session, csrf_token)
        with request.app.state.db.write() as conn:
            sessions.end(conn, session.id)
    response = RedirectResponse("/newsroom/login", status_code=303)
    auth.clear_session_cookie(response)
    return response


@router.get("/password", response_class=HTMLResponse)
def password_form(request: Request) -> Response:
    return _page(request, "password.html", _session(request), error=None, done=False)


@router.post("/password", response_class=HTMLResponse)
def change_password(
    request: Request, current_password: Annotated[str, Form(max_length=1024)],
    new_password: Annotated[str, Form(max_length=1024)], csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    session = _session(request)
    _check_form_csrf(session, csrf_token)
    db = request.app.state.db
    with db.read() as conn:
        if accounts.authenticate(conn, session.user.username, current_password) is None:
            return _page(request, "password.html", session, status=403, error="The current password is wrong.", done=False)
    try:
        with db.write() as conn:
            accounts.set_password(conn, session.user, new_password)
            sessions.end_all(conn, session.user.id, keep=session.id)
    except accounts.AccountError as exc:
        return _page(request, "password.html", session, status=422, error=str(exc).capitalize() + ".", done=False)
    return _page(request, "password.html", session, error=None, done=True)


# --- the dashboard and the desk -----------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def dashboard(request: Request) -> Response:
    session = _session(request)
    with request.app.state.db.read() as conn:
        rows = stories.list_stories(conn, include_drafts=True)
    return _page(request, "dashboard.html", session, stories=rows, can_edit=session.user.role.at_least(Role.editor))


@router.post("/stories")
def create_story(
    request: Request, headline: Annotated[str, Form(min_length=1, max_length=200)],
    dateline: Annotated[str, Form(max_length=80)] = "", csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    _editor_form(request, csrf_token, "start stories")
    headline = _headline(headline)
    with request.app.state.db.write() as conn:
        story = stories.create_story(conn, headline=headline, dateline=" ".join(dateline.split()))
    return RedirectResponse(f"/newsroom/stories/{story.slug}", status_code=303)


def _editor_form(request: Request, csrf_token: str, action: str) -> sessions.Session:
    """The session behind a form post that only editors may make."""
    session = _session(request)
    _check_form_csrf(session, csrf_token)
    if not session.user.role.at_least(Role.editor):
        raise HTTPException(403, f"Only editors can {action}.")
    return session


def _headline(text: str) -> str:
    headline = " ".join(text.split())
    if not headline:
        raise HTTPException(422, "A story needs a headline.")
    return headline


def _desk_story(conn: Connection, slug: str) -> Any:
    story = stories.get_story(conn, slug, include_drafts=True)
    if story is None:
        raise HTTPException(404, "There is no story at this address.")
    return story


@router.get("/stories/{slug}", response_class=HTMLResponse)
def desk(request: Request, slug: str) -> Response:
    session = _session(request)
    with request.app.state.db.read() as conn:
        story = _desk_story(conn, slug)
        followers = outbox.follower_count(conn, story.id)
    return _page(
        request, "desk.html", session, story=story, story_json=json.dumps(stories.story_json(story)),
        can_edit=session.user.role.at_least(Role.editor), followers=followers,
    )


@router.post("/stories/{slug}")
def update_story(
    request: Request, slug: str, headline: Annotated[str, Form(min_length=1, max_length=200)],
    dateline: Annotated[str, Form(max_length=80)] = "", summary: Annotated[str, Form(max_length=2000)] = "",
    status: Annotated[str, Form(pattern="^(draft|live|ended)$")] = "draft",
    requires_approval: Annotated[str, Form(max_length=5)] = "", csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    _editor_form(request, csrf_token, "change stories")
    with request.app.state.db.write() as conn:
        story = _desk_story(conn, slug)
        stories.update_story(conn, story, {
            "headline": _headline(headline), "dateline": " ".join(dateline.split()),
            "summary": summary.strip(), "status": status, "requires_approval": requires_approval == "on",
        })
    return RedirectResponse(f"/newsroom/stories/{slug}", status_code=303)


@router.get("/stories/{slug}/entries/{entry_id}/history", response_class=HTMLResponse)
def history(request: Request, slug: str, entry_id: int) -> Response:
    session = _session(request)
    with request.app.state.db.read() as conn:
        story = _desk_story(conn, slug)
        entry = entries.get_entry(conn, story.id, entry_id, include_pending=True)
        revisions = entries.list_revisions(conn, entry_id) if entry else []
    if not revisions:
        raise HTTPException(404, "This update has no history here.")
    steps = []
    previous: list[str] = []
    for revision in revisions:
        fields = json.loads(revision.fields)
        lines = revision.body.splitlines() + [f"{k}: {v}" for k, v in sorted(fields.items())]
        diff = list(difflib.ndiff(previous, lines)) if previous else [f"  {line}" for line in lines]
        steps.append({"revision": revision, "diff": [(d[:1], d[2:]) for d in diff if not d.startswith("?")]})
        previous = lines
    return _page(request, "history.html", session, story=story, entry_id=entry_id, steps=steps)


def sign_in_redirect(request: Request, exc: SignInRequired) -> Response:
    return RedirectResponse(f"/newsroom/login?next={quote(exc.next_path)}", status_code=303)
