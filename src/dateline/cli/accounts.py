"""`dateline user …` and `dateline token …`: the newsroom's accounts and API tokens."""

from __future__ import annotations

import sys

import click

from ..accounts import sessions
from ..accounts import users as accounts
from ..accounts.users import Role
from ..times import iso
from .common import database_option, schema_checked


@click.group()
def user() -> None:
    """Newsroom accounts."""


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]), default="reporter", show_default=True)
@click.option("--display-name", help="Name shown on posts (default: NAME).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@database_option
def user_add(name: str, role: str, display_name: str | None, password_stdin: bool, database_url: str | None) -> None:
    """Create an account and print its password."""
    db = schema_checked(database_url)
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else accounts.generate_password()
    with db.write() as conn:
        created = accounts.create_user(conn, name, password, Role(role), display_name)
    if password_stdin:
        click.echo(f"Created {created.role.value} {created.username}.", err=True)
    else:
        click.echo(f"Created {created.role.value} {created.username}; the password is:", err=True)
        click.echo(password)


@user.command("list")
@database_option
def user_list(database_url: str | None) -> None:
    """List the accounts."""
    db = schema_checked(database_url)
    with db.read() as conn:
        for u in accounts.list_users(conn):
            click.echo(f"{u.username}\t{u.role.value}\t{'disabled' if u.disabled else 'active'}\t{u.display_name}")


def _set_disabled(name: str, disabled: bool, database_url: str | None) -> None:
    db = schema_checked(database_url)
    with db.write() as conn:
        found = accounts.require_user(conn, name)
        accounts.update_user(conn, found, disabled=disabled)
        if disabled:
            sessions.end_all(conn, found.id)  # signed out everywhere; its tokens stop working
    click.echo(f"{'Disabled' if disabled else 'Enabled'} {found.username}.", err=True)


@user.command("disable")
@click.argument("name")
@database_option
def user_disable(name: str, database_url: str | None) -> None:
    """Disable an account: its sessions end and its tokens stop working, at once."""
    _set_disabled(name, True, database_url)


@user.command("enable")
@click.argument("name")
@database_option
def user_enable(name: str, database_url: str | None) -> None:
    """Enable a disabled account again (its tokens work again unless revoked)."""
    _set_disabled(name, False, database_url)


@user.command("set-password")
@click.argument("name")
@database_option
def user_set_password(name: str, database_url: str | None) -> None:
    """Set a new password, asked for at a prompt (or read as one line from standard input);
    the user's sessions end."""
    db = schema_checked(database_url)
    with db.read() as conn:
        found = accounts.require_user(conn, name)
    if sys.stdin.isatty():
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True, err=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    password_hash = accounts.new_password_hash(password)
    with db.write() as conn:
        accounts.store_password_hash(conn, found, password_hash)
        sessions.end_all(conn, found.id)
    click.echo(f"New password set for {found.username}; their sessions have ended.", err=True)


@click.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.argument("name")
@click.option("--label", default="", help="What the token is for (shown in listings).")
@database_option
def token_create(name: str, label: str, database_url: str | None) -> None:
    """Create an API token for the user NAME and print it alone on stdout."""
    db = schema_checked(database_url)
    with db.write() as conn:
        found = accounts.get_user(conn, name)
        if found is None:
            raise click.ClickException(f"no user named {name!r}; create one with `dateline user add {name}`")
        if found.disabled:
            raise click.ClickException(f"the account {name!r} is disabled")
        new_token = accounts.create_token(conn, found, label or "cli")
    click.echo(new_token)  # only once it is committed


@token.command("list")
@click.option("--user", "name", help="Only this user's tokens.")
@database_option
def token_list(name: str | None, database_url: str | None) -> None:
    """List API tokens, never the tokens themselves: id, prefix, user, label, created, last
    used (to the hour), state."""
    db = schema_checked(database_url)
    with db.read() as conn:
        owner = accounts.require_user(conn, name) if name is not None else None
        for t in accounts.list_tokens(conn, owner):
            state = f"revoked {iso(t.revoked_at)}" if t.revoked_at else "active"
            used = iso(t.last_used_at) if t.last_used_at else "never used"
            click.echo(f"{t.id}\t{t.prefix}…\t{t.username}\t{t.label}\t{iso(t.created_at)}\t{used}\t{state}")


@token.command("revoke")
@click.argument("token_id", metavar="ID", type=click.IntRange(1, 2**62))
@database_option
def token_revoke(token_id: int, database_url: str | None) -> None:
    """Revoke the token ID (from `dateline token list`): it stops working at once; its user
    stays enabled."""
    db = schema_checked(database_url)
    with db.write() as conn:
        found = accounts.get_token(conn, token_id)
        if found is None:
            raise click.ClickException(f"no token {token_id}; `dateline token list` shows them")
        revoked = accounts.revoke_token(conn, token_id)
    said = "Revoked" if revoked else "Already revoked:"
    click.echo(f"{said} token {token_id} ({found.prefix}…, {found.username}, {found.label}).", err=True)
