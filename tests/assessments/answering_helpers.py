"""Helpers for the partner-side tests: open a partner's link, get through the first pages, answer."""

from django.test import Client
from django.urls import reverse

from assessments import answering
from assessments.models import Instrument

SCALE_ITEM = "COM1"


def open_link(token, client=None):
    """A browser that opened a partner's link; returns (client, the redirect it got)."""
    client = client or Client()
    reply = client.get(reverse("assessments:open_link", args=[token]))
    return client, reply


def start(token, *, share=True, client=None):
    """Open the link, confirm who is answering, give consent. Returns the partner's browser."""
    client, reply = open_link(token, client)
    assert reply.status_code == 302, reply.content
    welcome = reply["Location"]
    response_id = int(welcome.strip("/").split("/")[1])
    client.post(welcome)
    client.post(
        reverse("assessments:consent", args=[response_id]),
        {"understood": "on", "share_summary": "yes" if share else "no"},
    )
    client.response_id = response_id
    return client


def save(client, item, value, seq, response_id=None):
    return client.post(
        reverse("assessments:save_answer", args=[response_id or client.response_id]),
        {"item": item, "value": value, "seq": seq},
    )


def all_codes():
    definition = Instrument.current().definition
    return [item["id"] for section in definition["sections"] for item in section["items"]]


def section_codes():
    definition = Instrument.current().definition
    return [[item["id"] for item in section["items"]] for section in definition["sections"]]


def answer_everything(client, value=4, safety=1, response_id=None):
    """Autosave an answer to every item (safety items get `safety`)."""
    safety_codes = set(section_codes()[-1])
    for code in all_codes():
        reply = save(client, code, safety if code in safety_codes else value, 1, response_id)
        assert reply.status_code in (200, 204), reply.content  # 200: support resources shown


def item_id(code):
    return answering.item_rules(Instrument.current().pk)[code].id
