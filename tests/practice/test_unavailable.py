"""The error handler: the database away is a readable 503 that keeps what was sent; anything else is
the plain 500 page. (tests/faults/test_database.py runs it for real, with PostgreSQL stopped.)"""

import html

from django.db import InterfaceError, OperationalError
from django.test import RequestFactory

from practice.views import error_500


def handled(request, exc):
    try:
        raise exc
    except Exception:
        return error_500(request)  # as Django calls it: inside the except block


def test_an_autosave_while_the_database_is_away_is_told_to_retry_in_plain_words():
    request = RequestFactory().post("/respond/1/save/", {"item": "COM1", "value": "4"}, HTTP_X_REQUESTED_WITH="fetch")
    reply = handled(request, OperationalError("connection refused"))
    assert reply.status_code == 503 and reply["Content-Type"].startswith("text/plain")
    assert reply.content.decode().startswith("Not saved yet") and reply["Retry-After"] == "5"


def test_a_form_posted_while_the_database_is_away_comes_back_with_its_answers_and_never_a_password():
    data = {"csrfmiddlewaretoken": "abc", "item-COM1": "4", "seq-COM1": "2", "password": "hunter2", "otp_token": "1"}
    reply = handled(RequestFactory().post("/respond/1/section/1/?x=1", data), InterfaceError("connection closed"))
    page = html.unescape(reply.content.decode())
    assert reply.status_code == 503 and reply["Cache-Control"] == "no-store"
    assert "The site is briefly unavailable" in page and 'action="/respond/1/section/1/?x=1"' in page
    for name, value in [("csrfmiddlewaretoken", "abc"), ("item-COM1", "4"), ("seq-COM1", "2")]:
        assert f'name="{name}" value="{value}"' in page
    assert "hunter2" not in page and "otp_token" not in page


def test_a_page_asked_for_while_the_database_is_away_offers_to_try_again():
    reply = handled(RequestFactory().get("/couples/"), OperationalError("timeout expired"))
    assert reply.status_code == 503 and 'href="/couples/"' in reply.content.decode()


def test_any_other_error_is_the_plain_500_page():
    reply = handled(RequestFactory().get("/couples/"), ValueError("a bug"))
    assert reply.status_code == 500 and "Something went wrong on our side" in reply.content.decode()
