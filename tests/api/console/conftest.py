"""The console in a real browser: the API served by ``python -m api.serve`` on a free port over a database of the
module's own (demo catalog, a user per role, the samples published), and Debian's Chromium driven by Playwright
(headless). Every page a test visits is screenshotted (tests/api/console/screenshots, git-ignored) and checked with
axe-core: no serious or critical violation."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.api.conftest import PASSWORD, SECRET
from tests.servers import api_server

CHROMIUM = Path(os.environ.get("DATASHARE_TEST_CHROMIUM", "/usr/bin/chromium"))
# Without the background-networking switches Chromium keeps trying to reach Google, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = Path(__file__).parent / "screenshots"
SERIOUS = {"serious", "critical"}


@pytest.fixture(scope="module")
def console(database: str, published: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The console's address, served by a real server process over the module's database."""
    data_dir = tmp_path_factory.mktemp("console-data")
    env = {**os.environ, "DATASHARE_DATABASE_URL": database, "DATASHARE_SECRET_KEY": SECRET,
           "DATASHARE_DATA_DIR": str(data_dir), "DATASHARE_ACCESS_REFRESH_SECONDS": "0"}  # fmt: skip
    with api_server(env, "--log-level", "warning") as (_, base):
        yield f"{base}/console"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `./dev test` installs it (apt-get install chromium fonts-noto-cjk)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def open_page(browser: Browser, console: str, request: pytest.FixtureRequest) -> Iterator[Callable[..., Page]]:
    """A new browser page (its own cookies) in a language and a window size, signed in as a test user or not."""
    contexts = []

    def opened(username: str | None = None, locale: str = "zh-CN", width: int = 1280, height: int = 800) -> Page:
        context = browser.new_context(locale=locale, viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        if username is not None:
            page.goto(f"{console}/sign-in")
            page.get_by_label(label("User name", locale)).fill(username)
            page.get_by_label(label("Password", locale)).fill(PASSWORD)
            page.keyboard.press("Enter")
            page.wait_for_url(f"{console}/")
        return page

    yield opened
    for context in contexts:
        context.close()


LABELS = {"User name": "用户名", "Password": "密码"}


def label(english: str, locale: str) -> str:
    return LABELS[english] if locale.startswith("zh") else english


def looked_at(page: Page, name: str) -> dict[str, Any]:
    """Screenshot the page (full length) and check it with axe-core; returns axe's results."""
    from axe_playwright_python.sync_playwright import Axe

    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
    results: dict[str, Any] = Axe().run(page).response
    serious = [(violation["id"], violation["help"]) for violation in results["violations"]
               if violation.get("impact") in SERIOUS]  # fmt: skip
    assert serious == [], f"{name}: {serious}"
    return results
