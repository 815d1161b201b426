"""In a real browser: the strict CSP blocks nothing the site needs, htmx works, the idle notice shows."""

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.e2e


@pytest.fixture
def browser_page(chromium):
    # Requested last: the test's data exists before Playwright's event loop starts in this thread,
    # and the test itself makes no query while the browser runs.
    page = chromium.new_page(viewport={"width": 420, "height": 900})
    page.console_lines = []
    page.on("console", lambda message: page.console_lines.append(f"{message.type}: {message.text}"))
    return page


def test_a_signed_in_page_runs_htmx_under_the_policy_and_warns_before_the_idle_end(
    server, world, settings, browser_page
):
    settings.SESSION_COOKIE_AGE = 303  # the notice appears 3 seconds after the page loads
    settings.SESSION_WARNING_SECONDS = 300
    page = browser_page
    page.goto(server.url + "/accounts/login/")
    page.fill("input[name=username]", world.owner.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/couples/")
    assert page.evaluate("typeof window.htmx") == "object"
    assert page.evaluate("htmx.config.allowEval") is False
    status = page.evaluate(
        """() => new Promise(done => {
            document.body.addEventListener('htmx:afterRequest', e => done(e.detail.xhr.status), {once: true});
            htmx.ajax('GET', '/accounts/keep-alive/', {target: '#main', swap: 'none'});
        })"""
    )
    assert status == 204
    page.wait_for_selector("#session-warning", state="visible", timeout=15000)
    assert "signed out in 5 minutes" in page.inner_text("#session-warning")
    page.click("[data-session-stay]")
    page.wait_for_selector("#session-warning", state="hidden", timeout=5000)
    blocked = [line for line in page.console_lines if "Content Security Policy" in line or "Refused" in line]
    assert not blocked, blocked
