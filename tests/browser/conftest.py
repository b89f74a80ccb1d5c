"""Fixtures of the browser tests: the local stack started by
scripts/browser-test.sh, a headless Chromium (the system's, driven by
Playwright), one-time portal links, and numbered screenshots.

Run them with `make browser-test` (or scripts/browser-test.sh [PYTEST_ARGS]).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", ROOT / "target" / "browser"))
# Where the whole-guide walk writes the README's screenshots (make screenshots).
README_SHOTS = (
    Path(os.environ["SCIMSYNC_README_SCREENSHOTS"])
    if os.environ.get("SCIMSYNC_README_SCREENSHOTS")
    else None
)
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
AXE_JS = Path(
    os.environ.get("AXE_JS", ROOT / "tests/browser/node_modules/axe-core/axe.min.js")
)

# What this machine's Chromium needs headless: no sandbox (tests run as root),
# no GPU, and nothing that phones home (the network is closed but loopback).
# Playwright gives each launch a fresh, empty user-data-dir of its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Stack:
    """The local stack: `scimsync --local serve` on a free port, with the emulator."""

    def __init__(self) -> None:
        missing = [
            v
            for v in ("SCIMSYNC_BIN", "SCIMSYNC_BASE_URL", "SCIMSYNC_TENANT_URL")
            if not os.environ.get(v)
        ]
        if missing:
            pytest.fail(
                f"{', '.join(missing)} not set: run the browser tests with "
                "`make browser-test` (scripts/browser-test.sh starts the stack)",
                pytrace=False,
            )
        self.bin = os.environ["SCIMSYNC_BIN"]
        self.base_url = os.environ["SCIMSYNC_BASE_URL"].rstrip("/")
        self.tenant_url = os.environ["SCIMSYNC_TENANT_URL"].rstrip("/")

    def cli(self, *args: str) -> dict:
        """Runs `scimsync --local --json ARGS` and returns its JSON output."""
        proc = subprocess.run(
            [self.bin, "--local", "--json", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if proc.returncode != 0:
            raise AssertionError(
                f"scimsync {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}"
            )
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def mint_link(self, tenant: str, ttl: str | None = None) -> str:
        """A fresh one-time portal link for TENANT (`scimsync portal link`)."""
        args = ["portal", "link", "--tenant", tenant, "--base-url", self.base_url]
        if ttl:
            args += ["--ttl", ttl]
        out = self.cli(*args)
        assert set(out) >= {"url", "expires"}, f"portal link printed {out}"
        url = out["url"]
        assert url.startswith(f"{self.base_url}/portal/open/{tenant}/"), url
        return url


@pytest.fixture(scope="session")
def stack() -> Stack:
    return Stack()


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield b
        b.close()


@pytest.fixture
def new_context(browser: Browser, request):
    """Factory of fresh browser contexts (each is a separate person: own cookies)."""
    made: list[BrowserContext] = []
    base_url = os.environ.get("SCIMSYNC_BASE_URL")

    def make(**kwargs) -> BrowserContext:
        kwargs.setdefault("viewport", {"width": 1280, "height": 900})
        if base_url:
            kwargs.setdefault("base_url", base_url)
        ctx = browser.new_context(**kwargs)
        ctx.set_default_timeout(15_000)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.close()


@pytest.fixture
def tenant_id(request):
    """Factory of fresh tenant ids, unique per run: bw-<test>-<n>-<random>."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_"))
    stem = stem.strip("-")[:30]
    count = iter(range(1, 100))

    def make() -> str:
        return f"bw-{stem}-{next(count)}-{secrets.token_hex(3)}"

    return make


class Shots:
    """Numbered full-page screenshots: target/browser/<prefix>-NN-<name>.png."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.n = 0
        self.paths: list[Path] = []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for old in ARTIFACTS.glob(f"{prefix}-[0-9][0-9]-*.png"):
            old.unlink()

    def take(self, page, name: str, readme: tuple[str, str] | None = None, mask=()) -> Path:
        """A full-page screenshot; with `readme=(selector, file name)` and
        SCIMSYNC_README_SCREENSHOTS set (`make screenshots`), also that
        section alone into that folder, for the README. `mask` covers
        secrets (the API token) with a box."""
        self.n += 1
        path = ARTIFACTS / f"{self.prefix}-{self.n:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True, mask=list(mask))
        self.paths.append(path)
        if readme and README_SHOTS:
            selector, file = readme
            README_SHOTS.mkdir(parents=True, exist_ok=True)
            section = page.locator(selector)
            section.scroll_into_view_if_needed()
            section.screenshot(path=str(README_SHOTS / file), mask=list(mask), animations="disabled")
        return path


@pytest.fixture
def shots(request) -> Shots:
    prefix = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_"))
    return Shots(prefix.strip("-"))
