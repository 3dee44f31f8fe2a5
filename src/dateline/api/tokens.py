"""`/api/v1/tokens`: API tokens listed and revoked. Admins see and revoke every token; anyone
else their own. Tokens are made by `dateline token create`, and shown once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request, Response

from ..accounts import users as accounts
from ..accounts.users import USERNAME_REGEX, Role, Token
from ..errors import Conflict
from ..times import iso, iso_or_none
from ..vocabulary import MAX_ID
from ..web.deps import Db, Member
from ..web.json_body import api_router
from ..web.problems import COMMON_ERRORS, WRITE_ERRORS, Problem
from .models import TokenList

router = api_router("tokens")

TokenId = Annotated[int, Path(ge=1, le=MAX_ID, examples=[1])]
UserQuery = Annotated[
    str | None,
    Query(alias="user", min_length=2, max_length=63, pattern=USERNAME_REGEX,
          description="Only this user's tokens (admins; anyone else may name only themselves)."),
]


def token_out(token: Token) -> dict[str, Any]:
    return {"id": token.id, "prefix": token.prefix, "user": token.username, "label": token.label,
            "created_at": iso(token.created_at), "last_used_at": iso_or_none(token.last_used_at),
            "revoked_at": iso_or_none(token.revoked_at)}


@router.get("/tokens", response_model=TokenList, responses=COMMON_ERRORS)
def list_tokens(db: Db, user: Member, username: UserQuery = None) -> dict[str, Any]:
    """Tokens, oldest first, revoked ones too: every user's for admins, your own otherwise."""
    with db.read() as conn:
        if username is not None and username != user.username:
            user.require(Role.admin, "see other users' tokens")
            owner = accounts.get_user(conn, username)
            if owner is None:
                raise Problem(404, f"No user named {username!r}.")
        else:
            owner = None if user.can(Role.admin) and username is None else user
        return {"tokens": [token_out(t) for t in accounts.list_tokens(conn, owner)]}


@router.delete("/tokens/{token_id}", status_code=204, responses=WRITE_ERRORS)
def revoke_token(token_id: TokenId, request: Request, db: Db, user: Member) -> Response:
    """Revoke a token: it stops working at once; its user stays enabled. Revoking one already
    revoked changes nothing. The token a request is made with cannot revoke itself (409)."""
    with db.write() as conn:
        token = accounts.get_token(conn, token_id)
        if token is None or (token.username != user.username and not user.can(Role.admin)):
            raise Problem(404, f"No token {token_id} of yours.")
        if getattr(request.state, "token_id", None) == token_id:
            raise Conflict("This request is made with that token: revoke it with another, or sign in.")
        accounts.revoke_token(conn, token_id)
    return Response(status_code=204)
