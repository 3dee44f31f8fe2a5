"""Screenshots of the reader's story page and the newsroom composer, phone (390×844) and
desktop (1366×900), light and dark.

    python scripts/screenshots.py            # writes docs/screenshots/*.png

Runs `dateline demo` in a scratch folder and photographs it with Debian's Chromium.
"""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SIZES = {"phone": (390, 844, 2), "desktop": (1366, 900, 1)}
SCHEMES = {"": "light", "-dark": "dark"}  # file name suffix: colour scheme


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as scratch:
        demo = subprocess.Popen(
            [sys.executable, "-m", "dateline", "demo", "--port", str(port), "--interval", "3"],
            cwd=scratch, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        try:
            printed = "".join(demo.stdout.readline() for _ in range(5))  # type: ignore[union-attr]
            slug = printed.split("/stories/")[1].split()[0]
            password = printed.split("password ")[1].split()[0]
            for _ in range(100):
                try:
                    if httpx.get(base + "/").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                for (name, (width, height, scale)), (suffix, scheme) in itertools.product(SIZES.items(), SCHEMES.items()):
                    page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=scale,
                                            color_scheme=scheme)
                    page.goto(f"{base}/stories/{slug}")
                    # Wait for the simulated reporter's next post, so the highlight shows.
                    page.wait_for_selector(".entry.is-new", timeout=15000)
                    page.screenshot(path=str(OUT / f"story-{name}{suffix}.png"),
                                    clip={"x": 0, "y": 0, "width": width, "height": height * 2}, full_page=True)
                    print(OUT / f"story-{name}{suffix}.png")
                    page.close()
                for (name, (width, height, scale)), (suffix, scheme) in itertools.product(SIZES.items(), SCHEMES.items()):
                    page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=scale,
                                            color_scheme=scheme)
                    page.goto(f"{base}/newsroom/login")
                    page.fill("input[name=username]", "admin")
                    page.fill("input[name=password]", password)
                    page.click("button[type=submit]")
                    page.goto(f"{base}/newsroom/stories/{slug}")
                    page.check("input[name=kind][value=quote]")
                    page.fill("input[name=speaker]", "Mira Solvane")
                    page.fill("input[name=role]", "opposition candidate")
                    page.fill("textarea[name=body]", "We will be back on the square tomorrow night.")
                    page.wait_for_selector(".desk-entry")
                    page.screenshot(path=str(OUT / f"composer-{name}{suffix}.png"),
                                    clip={"x": 0, "y": 0, "width": width, "height": height * 2}, full_page=True)
                    print(OUT / f"composer-{name}{suffix}.png")
                    page.close()
                browser.close()
        finally:
            demo.terminate()
            demo.wait(10)


if __name__ == "__main__":
    main()
