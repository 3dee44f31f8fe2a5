"""`dateline token list|revoke` and `dateline user disable|enable|set-password`, run as an
operator runs them: a real process on a real database file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from dateline.accounts import sessions
from dateline.accounts import users as accounts
from dateline.db import Database
from test_cli import dateline


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    assert dateline("init", cwd=tmp_path).returncode == 0
    assert dateline("user", "add", "mira", "--role", "editor", cwd=tmp_path).returncode == 0
    return tmp_path


def _db(folder: Path) -> Database:
    return Database(f"sqlite:///{folder / 'dateline.db'}")


def _session(db: Database, name: str) -> None:
    with db.write() as conn:
        user = accounts.get_user(conn, name)
        assert user is not None
        sessions.start(conn, user, ip="127.0.0.1", user_agent="tests", max_age=timedelta(hours=1))


def _session_count(db: Database, name: str) -> int:
    with db.read() as conn:
        user = accounts.get_user(conn, name)
        assert user is not None
        return sessions.count(conn, user.id)


def test_tokens_are_listed_without_their_secret_and_revoked_one_by_one(folder: Path) -> None:
    script = dateline("token", "create", "mira", "--label", "ingest script", cwd=folder).stdout.strip()
    laptop = dateline("token", "create", "mira", "--label", "laptop", cwd=folder).stdout.strip()
    listed = dateline("token", "list", cwd=folder)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [(r[0], r[2], r[3], r[6]) for r in rows] == [("1", "mira", "ingest script", "active"),
                                                         ("2", "mira", "laptop", "active")]
    assert script.startswith(rows[0][1].rstrip("…")) and rows[0][5] == "never used"
    assert script not in listed.stdout and laptop not in listed.stdout

    revoked = dateline("token", "revoke", "1", cwd=folder)
    assert revoked.returncode == 0 and "Revoked token 1" in revoked.stderr
    db = _db(folder)
    try:
        with db.read() as conn:
            assert accounts.user_for_token(conn, script) is None, "the leaked token stops"
            assert accounts.user_for_token(conn, laptop) is not None, "the others go on"
            mira = accounts.get_user(conn, "mira")
            assert mira is not None and not mira.disabled
    finally:
        db.dispose()
    after = dateline("token", "list", "--user", "mira", cwd=folder).stdout.splitlines()
    assert after[0].split("\t")[6].startswith("revoked ") and after[1].endswith("\tactive")
    again = dateline("token", "revoke", "1", cwd=folder)
    assert again.returncode == 0 and "Already revoked" in again.stderr


def test_disabling_a_user_ends_their_sessions_and_stops_their_tokens(folder: Path) -> None:
    token = dateline("token", "create", "mira", cwd=folder).stdout.strip()
    db = _db(folder)
    try:
        _session(db, "mira")
        disabled = dateline("user", "disable", "mira", cwd=folder)
        assert disabled.returncode == 0 and "Disabled mira" in disabled.stderr
        assert _session_count(db, "mira") == 0
        with db.read() as conn:
            assert accounts.user_for_token(conn, token) is None
        assert "\tdisabled\t" in dateline("user", "list", cwd=folder).stdout
        assert dateline("user", "enable", "mira", cwd=folder).returncode == 0
        with db.read() as conn:
            assert accounts.user_for_token(conn, token) is not None
    finally:
        db.dispose()


def test_set_password_reads_standard_input_and_ends_sessions(folder: Path) -> None:
    db = _db(folder)
    try:
        _session(db, "mira")
        changed = dateline("user", "set-password", "mira", cwd=folder, stdin="a new long secret\n")
        assert changed.returncode == 0, changed.stderr
        assert "a new long secret" not in changed.stdout + changed.stderr
        assert _session_count(db, "mira") == 0
        with db.read() as conn:
            assert accounts.authenticate(conn, "mira", "a new long secret") is not None
    finally:
        db.dispose()
    argv_only = dateline("user", "set-password", "mira", "a new long secret", cwd=folder, stdin="")
    assert argv_only.returncode != 0, "a password is never taken from the command line"


@pytest.mark.parametrize(
    "args, message",
    [
        (("token", "revoke", "999"), "no token 999"),
        (("token", "revoke", "abc"), "Invalid value for 'ID'"),
        (("token", "revoke", "0"), "Invalid value for 'ID'"),
        (("token", "list", "--user", "ghost"), "No user named 'ghost'"),
        (("user", "disable", "ghost"), "No user named 'ghost'"),
        (("user", "enable", "ghost"), "No user named 'ghost'"),
        (("user", "set-password", "ghost"), "No user named 'ghost'"),
        (("user", "set-password", "mira"), "at least 10 characters"),
    ],
)
def test_errors_are_one_line_and_non_zero(folder: Path, args: tuple[str, ...], message: str) -> None:
    result = dateline(*args, cwd=folder, stdin="short\n")
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("Error: ")] == [
        result.stderr.strip().splitlines()[-1]], "one line says what is wrong"


@pytest.mark.parametrize("command", [("token", "list"), ("token", "revoke"), ("user", "disable"),
                                     ("user", "enable"), ("user", "set-password")])
def test_every_new_command_has_help(tmp_path: Path, command: tuple[str, ...]) -> None:
    result = dateline(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0 and "Usage:" in result.stdout
