"""Real-browser fixtures: Debian's Chromium driven by Playwright against a live server on loopback,
with a real Celery worker on the same test database.

When no Chromium is installed the browser tests are skipped with a message saying so.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Worker

# Playwright's sync API runs an event loop in this thread; the ORM calls made by the tests
# themselves are ordinary synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-results" / "screenshots"
README_SHOTS = ROOT / "docs" / "img"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(config, items):
    if HAVE_CHROMIUM:
        return
    skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM}: browser tests skipped (apt-get install chromium)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


# Function scope, and requested after the data fixtures: Playwright's event loop runs in this
# thread while it is open, and a query made inside it opens a database connection that is never
# closed (the test database could then not be dropped). Tests create their data first.
@pytest.fixture
def playwright_instance():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture
def chromium(playwright_instance):
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    yield browser
    browser.close()


@pytest.fixture
def new_context(chromium):
    contexts = []

    def make(viewport=None, **kwargs):
        viewport = viewport or DESKTOP
        context = chromium.new_context(
            viewport=viewport,
            is_mobile=viewport["width"] < 500,
            has_touch=viewport["width"] < 500,
            **kwargs,
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def server(transactional_db):
    """A live server of this test alone, stopped (its connections closed) before the database goes."""
    from pytest_django.live_server_helper import LiveServer

    live = LiveServer("localhost")
    yield live
    live.stop()


@pytest.fixture
def site(server, tmp_path):
    """The live server plus a real Celery worker sharing its database."""
    worker = Worker(tmp_path / "mail").start()
    yield server, worker
    worker.stop()


def sign_in(page, base, email, password=None):
    from tests.conftest import PASSWORD

    page.goto(f"{base}/accounts/login/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password or PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def shot(page, name):
    """Save a screenshot under test-results/; with SCREENSHOTS=1 also refresh docs/img/ for the README."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    if os.environ.get("SCREENSHOTS") == "1":
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(README_SHOTS / f"{name}.png"), full_page=False)


def pdf_shot(path, name):
    """With SCREENSHOTS=1, page 1 of a downloaded PDF as docs/img/<name>.png for the README.

    Drawn by pdftoppm (Debian's poppler-utils), which only `make screenshots` needs; without it the
    image is left as it was and the run says so."""
    if os.environ.get("SCREENSHOTS") != "1":
        return
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        print(f"pdftoppm not found (apt-get install poppler-utils): docs/img/{name}.png not refreshed")
        return
    README_SHOTS.mkdir(parents=True, exist_ok=True)
    command = [pdftoppm, "-png", "-r", "70", "-f", "1", "-l", "1", "-singlefile", str(path), str(README_SHOTS / name)]
    subprocess.run(command, check=True, timeout=60)  # noqa: S603 - a fixed tool on a file of the test's


def assert_accessible(page, where):
    """axe-core finds no serious or critical violation on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
    detail = "\n".join(f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}" for v in bad)
    assert not bad, f"axe on {where}:\n{detail}"
