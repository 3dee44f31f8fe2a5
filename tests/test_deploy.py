"""deploy/systemd, as shipped: the unit passes systemd's own check, and its commands, run with
its environment file, start a node that answers /healthz (deploy/nginx is started for real in
tests/live/test_nginx.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conftest import free_port, missing_service

DEPLOY = Path(__file__).parents[1] / "deploy" / "systemd"
SHIPPED_BINARY = "/opt/dateline/bin/dateline"
DATELINE = str(Path(sys.executable).with_name("dateline"))


def unit_values(text: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_systemd_finds_nothing_wrong_with_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        missing_service("systemd-analyze is not installed (apt-get install systemd)")
    text = (DEPLOY / "dateline.service").read_text()
    assert SHIPPED_BINARY in text
    # This machine's paths and user: the rest exactly as shipped.
    user = "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
    unit = tmp_path / "dateline.service"
    unit.write_text(text.replace(SHIPPED_BINARY, DATELINE).replace("User=dateline", f"User={user}")
                    .replace("Group=dateline", f"Group={user}"))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # systemd only warns (exit 0) about a value it cannot read: any output is a defect.
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), done.stderr


def test_the_unit_has_a_home_and_starts_at_boot() -> None:
    text = (DEPLOY / "dateline.service").read_text()
    unit = unit_values(text)
    # systemd makes /var/lib/dateline for the user; relative paths and the photos land there.
    assert unit["StateDirectory"] == ["dateline"] and unit["WorkingDirectory"] == ["/var/lib/dateline"]
    assert unit["ReadWritePaths"] == ["/var/lib/dateline"]
    defaults = dict(line.split("=", 1) for line in unit["Environment"])
    assert defaults["DATELINE_MEDIA_DIR"] == "/var/lib/dateline/media"
    assert defaults["DATELINE_DATABASE_URL"] == "sqlite:////var/lib/dateline/site.db"
    # The environment file comes after the defaults: systemd lets it override them.
    assert text.index("EnvironmentFile=") > text.index("Environment=DATELINE_MEDIA_DIR")
    assert "[Install]" in text and unit["WantedBy"] == ["multi-user.target"]


def test_the_units_commands_with_its_environment_file_start_a_node(tmp_path: Path) -> None:
    unit = unit_values((DEPLOY / "dateline.service").read_text())
    env_file = unit_values((DEPLOY / "dateline.env").read_text())
    assert unit["EnvironmentFile"] == ["/etc/dateline/dateline.env"]
    port = free_port()
    # The shipped file names machines of a site; here, one machine stands in for them.
    here = {"DATELINE_DATABASE_URL": f"sqlite:///{tmp_path / 'site.db'}", "DATELINE_BROKER": "local",
            "DATELINE_HOST": "127.0.0.1", "DATELINE_PORT": str(port)}
    assert set(here) <= set(env_file)
    defaults = dict(line.replace("/var/lib/dateline", str(tmp_path)).split("=", 1) for line in unit["Environment"])
    env = {**os.environ, **defaults, **{k: v[0] for k, v in env_file.items()}, **here}

    def command(line: str) -> list[str]:
        binary, *args = line.split()
        assert binary == SHIPPED_BINARY
        return [DATELINE, *args]

    for _ in range(2):  # every start runs it: a database already current is left as it is
        done = subprocess.run(command(unit["ExecStartPre"][0]), env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    server = subprocess.Popen(command(unit["ExecStart"][0]), env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read().decode()  # type: ignore[union-attr]
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the node did not start"
                time.sleep(0.2)
        assert health.status_code == 200 and health.json()["status"] == "ok", health.text
    finally:
        os.killpg(server.pid, 15)  # KillMode=control-group: the whole group, as systemd stops it
        server.wait(20)
        server.stderr.close()  # type: ignore[union-attr]
