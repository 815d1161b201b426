import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import PHONE, assert_accessible, shot

pytestmark = pytest.mark.e2e


def sign_in(page, base, email):
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_page_is_accessible_on_desktop_and_phone(server, new_context):
    for viewport, name in ((None, "sign-in"), (PHONE, "sign-in-phone")):
        page = new_context(viewport).new_page()
        page.goto(f"{server.url}/accounts/login/")
        assert page.get_by_role("heading", name="Sign in").is_visible()
        assert_accessible(page, name)
        shot(page, name)


def test_a_wrong_password_is_refused_in_plain_words(world, server, new_context):
    page = new_context().new_page()
    page.goto(f"{server.url}/accounts/login/")
    page.get_by_label("E-mail").fill(world.owner.email)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text().startswith("That e-mail and password do not match")
