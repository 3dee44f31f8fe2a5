"""The `dateline` command, run as an operator runs it: a real process, real files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import ServerProcess, Site, free_port


def dateline(*args: str, cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DATELINE_")}
    return subprocess.run(
        [sys.executable, "-m", "dateline", *args], cwd=cwd, input=stdin, capture_output=True,
        text=True, timeout=60, env={**environment, **(env or {})},
    )


def test_init_user_and_token_work_in_a_fresh_folder(tmp_path: Path) -> None:
    first = dateline("init", cwd=tmp_path)
    assert first.returncode == 0 and "ready" in first.stdout
    assert f"Created the database {tmp_path / 'dateline.db'}" in first.stdout, "init says what it made, and where"
    assert (tmp_path / "dateline.db").exists(), "the default database is a file in the current folder"
    assert "up to date" in dateline("init", cwd=tmp_path).stdout

    added = dateline("user", "add", "mira", "--role", "editor", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    password = added.stdout.strip()
    assert len(password) >= 16 and "\n" not in password

    token = dateline("token", "create", "mira", cwd=tmp_path)
    assert token.returncode == 0 and token.stdout.startswith("dl_") and token.stdout.count("\n") == 1

    listed = dateline("user", "list", cwd=tmp_path).stdout
    assert listed.startswith("mira\teditor\tactive")


def test_a_token_from_the_cli_works_against_the_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    assert dateline("init", "--database", url, cwd=tmp_path).returncode == 0
    assert dateline("user", "add", "ed", "--role", "editor", "--database", url, cwd=tmp_path).returncode == 0
    token = dateline("token", "create", "ed", env={"DATELINE_DATABASE_URL": url}, cwd=tmp_path).stdout.strip()
    server = ServerProcess(url).start()
    try:
        created = httpx.post(server.base_url + "/api/v1/stories", json={"headline": "From the CLI"},
                             headers={"Authorization": f"Bearer {token}"})
        assert created.status_code == 201
    finally:
        server.stop()


def test_password_stdin_sets_the_password(tmp_path: Path, site: Site) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    dateline("init", "--database", url, cwd=tmp_path)
    result = dateline("user", "add", "pat", "--password-stdin", "--database", url, cwd=tmp_path,
                      stdin="a long enough secret\n")
    assert result.returncode == 0 and result.stdout == ""
    from dateline.accounts import users as accounts
    from dateline.db import Database

    db = Database(url)
    with db.read() as conn:
        assert accounts.authenticate(conn, "pat", "a long enough secret") is not None
        assert accounts.authenticate(conn, "pat", "wrong password!") is None
    db.dispose()


@pytest.mark.parametrize(
    "args, message",
    [
        (("token", "create", "ghost"), "no user named 'ghost'"),
        (("user", "add", "Bad Name!"), "username is"),
        (("user", "add", "short", "--password-stdin"), "at least 10 characters"),
        (("user", "add", "x1", "--role", "chief"), "Invalid value for '--role'"),
        (("init", "--database", "mysql://localhost/x"), "expected a sqlite:/// or postgresql:// URL"),
        (("init", "--database", "postgresql://nobody@127.0.0.1:1/none"), "cannot use the database"),
        (("frobnicate",), "No such command"),
    ],
)
def test_errors_are_one_line_and_non_zero(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    dateline("init", cwd=tmp_path)
    result = dateline(*args, cwd=tmp_path, stdin="short\n")
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_commands_refuse_an_uninitialised_database(tmp_path: Path) -> None:
    result = dateline("user", "add", "early", cwd=tmp_path)
    assert result.returncode != 0 and "run `dateline init` first" in result.stderr
    serve = dateline("serve", "--port", str(free_port()), cwd=tmp_path)
    assert serve.returncode != 0 and "run `dateline init` first" in serve.stderr


@pytest.mark.parametrize("args", [("user", "list"), ("user", "add", "mira"), ("token", "list"),
                                  ("token", "create", "mira"), ("push", "rotate-keys"), ("prune",),
                                  ("serve", "--port", "1")])
def test_a_chore_in_the_wrong_folder_makes_no_stray_database(tmp_path: Path, args: tuple[str, ...]) -> None:
    """An operator who ran `init --database …` and forgot it on the next command is told so;
    no empty ./dateline.db appears to confuse the next one."""
    result = dateline(*args, cwd=tmp_path)
    assert result.returncode != 0
    assert f"no database at {tmp_path / 'dateline.db'}; run `dateline init` first" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_init_refuses_a_folder_that_is_not_there(tmp_path: Path) -> None:
    """A typo in the path must not quietly make a new tree of folders."""
    url = f"sqlite:///{tmp_path / 'var' / 'lib' / 'site.db'}"
    result = dateline("init", "--database", url, cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"no folder {tmp_path / 'var' / 'lib'} for the database site.db: create it first" in result.stderr
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "var" / "lib").mkdir(parents=True)
    made = dateline("init", "--database", url, cwd=tmp_path)
    assert made.returncode == 0 and f"Created the database {tmp_path / 'var' / 'lib' / 'site.db'}" in made.stdout


def test_the_database_set_once_in_the_environment_serves_every_command(tmp_path: Path) -> None:
    """As docs/operations.md does it: DATELINE_DATABASE_URL exported once, then plain commands."""
    elsewhere = tmp_path / "site"
    elsewhere.mkdir()
    env = {"DATELINE_DATABASE_URL": f"sqlite:///{elsewhere / 'site.db'}"}
    assert dateline("init", cwd=tmp_path, env=env).returncode == 0
    assert dateline("user", "add", "mira", "--role", "admin", cwd=tmp_path, env=env).returncode == 0
    assert dateline("user", "list", cwd=tmp_path, env=env).stdout.startswith("mira\tadmin\tactive")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"], "nothing left in the current folder"


def test_a_bad_setting_is_reported_by_name(tmp_path: Path) -> None:
    result = dateline("config", cwd=tmp_path, env={"DATELINE_PORT": "eighty"})
    assert result.returncode != 0 and "DATELINE_PORT" in result.stderr


def test_config_redacts_database_passwords(tmp_path: Path) -> None:
    result = dateline("config", cwd=tmp_path, env={"DATELINE_DATABASE_URL": "postgresql://app:s3cret@db/news"})
    assert "DATELINE_DATABASE_URL=postgresql://app:***@db/news" in result.stdout
    assert "s3cret" not in result.stdout


@pytest.mark.parametrize("command", [(), ("serve",), ("demo",), ("init",), ("user",), ("user", "add"),
                                     ("user", "list"), ("token",), ("token", "create"), ("config",),
                                     ("push",), ("push", "rotate-keys")])
def test_every_command_has_help(tmp_path: Path, command: tuple[str, ...]) -> None:
    result = dateline(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0 and "Usage:" in result.stdout


@pytest.mark.slow
def test_the_demo_serves_a_live_story_that_grows(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dateline", "demo", "--port", str(port), "--interval", "0.5"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        lines = [process.stdout.readline() for _ in range(5)]  # type: ignore[union-attr]
        printed = "".join(lines)
        assert f"http://127.0.0.1:{port}/stories/" in printed and "API token:   dl_" in printed
        assert "user 'admin' (role admin), password " in printed
        slug = printed.split("/stories/")[1].split()[0]
        base = f"http://127.0.0.1:{port}"
        import time

        deadline = time.monotonic() + 20
        count = 0
        while time.monotonic() < deadline:
            try:
                count = len(httpx.get(f"{base}/api/v1/stories/{slug}/entries?limit=100").json()["entries"])
            except httpx.HTTPError:
                count = 0
            if count >= 14:
                break
            time.sleep(0.3)
        assert count >= 14, "the sample story has 12 updates and the reporter keeps adding more"
        page = httpx.get(f"{base}/stories/{slug}").text
        assert "Live" in page and "Key events" in page and "What we know" in page
        assert "Presidential election: final result" in page and "78.4 %" in page
        # The reporter's update of the night's detentions (the script's 22nd) moves the block too.
        detained = httpx.get(f"{base}/api/v1/stories/{slug}/blocks").json()["blocks"][1]
        while detained["revision"] < 2 and time.monotonic() < deadline + 15:
            time.sleep(0.3)
            detained = httpx.get(f"{base}/api/v1/stories/{slug}/blocks/{detained['id']}").json()
        assert [row["count"] for row in detained["rows"]] == [112, 171]
        assert (tmp_path / "dateline-demo.db").exists()
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()  # type: ignore[union-attr]
