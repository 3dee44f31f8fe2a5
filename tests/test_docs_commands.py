"""The shell blocks of README.md and docs/operations.md, run as written: an operator who copies
them gets exit code 0, and every command reaches the one database the docs mean (no stray
`dateline.db` left wherever the shell was). Blocks that need root, systemd or a package
manager are not run; their `dateline` commands are still checked against the real CLI."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx
import pytest

from conftest import free_port, missing_service
from dateline.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
OPERATIONS = ROOT / "docs" / "operations.md"
UNIT = ROOT / "deploy" / "systemd" / "dateline.service"
BIN = Path(sys.executable).parent  # the venv's bin folder, where its `dateline` script is
DOCUMENTED_PORT = "8000"


def sh_blocks(doc: Path, heading: str) -> list[str]:
    """The ```sh blocks of the section under `## heading`, in order."""
    sections = re.split(r"^## ", doc.read_text(), flags=re.M)
    section = next(s for s in sections if s.startswith(heading + "\n"))
    return re.findall(r"^```sh\n(.*?)^```", section, re.S | re.M)


def commands(block: str) -> list[str]:
    """The block's commands, one per entry: lines continued with a backslash joined."""
    joined = re.sub(r"\\\n\s*", "", block)
    return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def run(script: str, cwd: Path, stdin: str = "") -> str:
    """Run the commands with bash, stopping at the first that fails (`set -e`)."""
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if not k.startswith("DATELINE_")})
    assert done.returncode == 0, f"{script}\nexited {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout


def own_files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def sqlite_files(name: str) -> set[str]:
    return {name, f"{name}-wal", f"{name}-shm"}


def wait_until_serving(process: subprocess.Popen[bytes], base: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, "dateline serve exited"
        try:
            if httpx.get(f"{base}/api/v1/stories", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("dateline serve did not answer in time")


# README.md, "Run it for real": the setup block (its last line serves), then the curl block.
README_SETUP, README_POST = sh_blocks(README, "Run it for real")


def readme(command: str, port: str) -> str:
    return command.replace(".venv/bin/dateline", str(BIN / "dateline")).replace(DOCUMENTED_PORT, port)


def test_the_readme_runs_it_for_real(tmp_path: Path) -> None:
    curl = shutil.which("curl")
    if curl is None:
        missing_service("curl is not installed (apt-get install curl)")
    port = str(free_port())
    *setup, serve = [readme(c, port) for c in commands(README_SETUP)]
    assert " serve " in serve, "the setup block ends by serving"
    run("\n".join(setup), tmp_path)
    server = subprocess.Popen(shlex.split(serve), cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(server, base)
        # --fail-with-body: an error answer (a renamed field, a missing token) fails the block.
        post = [readme(c, port).replace("curl ", f"{curl} --fail-with-body -sS ", 1) for c in commands(README_POST)]
        run("\n".join(post), tmp_path)
        entries = httpx.get(f"{base}/api/v1/stories/polls-close/entries").json()["entries"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(15)
    assert [(e["kind"], e["speaker"], e["author"]["username"]) for e in entries] == [("quote", "Mira Solvane", "mira")]
    assert own_files(tmp_path) <= sqlite_files("dateline.db"), "one database, in the folder the README says"


# docs/operations.md: the install block runs as root; of it, only the line writing the node's
# settings runs here, the rest is done by the test the way root and systemd do it. Then the
# node's shell (its first line switches user) and the accounts block run in one shell.
ROOT_ONLY = ("python3 -m venv", "useradd", "install ", "systemctl", "runuser")
INSTALL, NODE_SHELL = sh_blocks(OPERATIONS, "One machine, SQLite")
(ACCOUNTS,) = sh_blocks(OPERATIONS, "Accounts and tokens")


def test_the_operations_node_shell_reaches_the_nodes_database(tmp_path: Path) -> None:
    state, etc, elsewhere = tmp_path / "var-lib-dateline", tmp_path / "etc-dateline", tmp_path / "shell"
    for folder in (state, etc, elsewhere):  # StateDirectory=, `install -d`, and where the shell was
        folder.mkdir()

    def here(command: str) -> str:
        return (command.replace("/var/lib/dateline", str(state)).replace("/etc/dateline", str(etc))
                .replace("/opt/dateline/bin", str(BIN)))

    def runnable(block: str) -> list[str]:
        return [here(c) for c in commands(block) if not c.startswith(ROOT_ONLY)]

    run("\n".join(runnable(INSTALL)), elsewhere)
    assert (etc / "dateline.env").is_file()
    # What the unit's ExecStartPre does before the first start, with the same settings.
    (start_pre,) = [line.split("=", 1)[1] for line in UNIT.read_text().splitlines() if line.startswith("ExecStartPre=")]
    run(f"set -a; . {etc / 'dateline.env'}; set +a; {here(start_pre)}", state)
    # set-password reads the new password from standard input when it is not a terminal.
    run("\n".join(runnable(NODE_SHELL) + runnable(ACCOUNTS)), elsewhere, stdin="a new password for rita\n")

    users = run(f"{BIN / 'dateline'} user list --database sqlite:///{state / 'site.db'}", tmp_path)
    assert [line.split("\t")[:3] for line in users.splitlines()] == [["mira", "admin", "active"],
                                                                     ["rita", "reporter", "active"]]
    assert own_files(elsewhere) == set(), "nothing made where the shell was"
    assert own_files(state) <= sqlite_files("site.db"), "no second database beside the node's"


# Every `dateline` command of these docs' blocks, including those not run above, as the CLI
# parses it: a renamed command or flag, or an argument it does not take, fails here.
DOCS = (README, OPERATIONS)
DATELINE_COMMAND = re.compile(r"(?:^|\$\(|\|\s*|&&\s*|^Exec\w*=)(?:\S*/)?dateline(?![\w./-])([^#|;&)\n]*)", re.M)


def documented_commands() -> list[str]:
    found = []
    for doc in DOCS:
        for block in re.findall(r"^```(?:sh|ini)\n(.*?)^```", doc.read_text(), re.S | re.M):
            for command in commands(block):
                found += [args.strip() for args in DATELINE_COMMAND.findall(command.lstrip())]
    return found


def parse(args: list[str]) -> None:
    """Resolve the subcommands and parse the options as `dateline` would, without running it."""
    command: click.Command = main
    ctx = click.Context(main, info_name="dateline")
    while isinstance(command, click.Group):
        name, *args = args or ["serve"]
        sub = command.get_command(ctx, name)
        assert sub is not None, f"no command {name!r}"
        command, ctx = sub, click.Context(sub, info_name=name, parent=ctx)
    command.make_context(ctx.info_name, args, parent=ctx.parent)


def test_the_docs_have_dateline_commands_to_check() -> None:
    found = documented_commands()
    assert "init" in found and "user add mira --role admin" in found and "serve" in found, found


@pytest.mark.parametrize("command", documented_commands())
def test_every_documented_dateline_command_parses(command: str) -> None:
    try:
        parse(shlex.split(command))
    except click.UsageError as exc:
        pytest.fail(f"`dateline {command}`: {exc.format_message()}")
