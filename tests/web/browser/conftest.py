"""Browser fixtures: the app under uvicorn on 127.0.0.1, Debian's Chromium driven by playwright.

- `live_url`; `browser`; `page_as(role, width=...)`: a page signed in through the real form.
- `check_a11y(page)`: axe-core in the page, zero serious or critical violations.
- `shot(page, name)`: a full-page screenshot under .artifacts/web/ (gitignored).
- `csp_violations(console)`: console lines reporting a Content-Security-Policy refusal.
Browser tests run on SQLite only (suite budget); the HTTP tests of the same pages run on both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from atom.security.models import Role
from tests.support.live_server import serving
from tests.web.conftest import MakeWebUser, WebUserInfo

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / ".artifacts" / "web"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def backend() -> str:
    """SQLite only (suite budget): the HTTP tests of the same pages run on both databases."""
    return "sqlite"


@pytest.fixture
async def live_url(app: FastAPI) -> AsyncIterator[str]:
    async with serving(app) as address:
        yield f"http://{address}"


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not HAVE_CHROMIUM:
        pytest.fail(f"Chromium is missing at {CHROMIUM}: `apt-get install -y chromium` (.ci/run does)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class BrowserPage:
    page: Any
    user: WebUserInfo
    console: list[str]


PageAs = Callable[..., Awaitable[BrowserPage]]


@pytest.fixture
async def page_as(browser: Any, live_url: str, web_user: MakeWebUser) -> PageAs:
    async def factory(role: Role | str = Role.VIEWER, *, width: int = 1280, height: int = 900) -> BrowserPage:
        user = await web_user(role)
        context = await browser.new_context(base_url=live_url, viewport={"width": width, "height": height})
        page = await context.new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        await page.goto("/signin")
        await page.get_by_label("Username").fill(user.username)
        await page.get_by_label("Password").fill(user.password)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(f"{live_url}/")
        return BrowserPage(page=page, user=user, console=console)

    return factory


async def check_a11y(page: Any) -> list[dict[str, Any]]:
    """Run axe-core in the page; fail on any serious or critical violation."""
    if not AXE.exists():
        pytest.fail("axe-core is missing: run `make assets` (npm ci)")
    await page.evaluate(AXE.read_text())
    result = await page.evaluate("async () => (await axe.run(document)).violations")
    serious = [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == [], serious
    return list(result)


async def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


def csp_violations(console: list[str]) -> list[str]:
    return [line for line in console if "Content Security Policy" in line or "Refused to" in line]
