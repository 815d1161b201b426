"""In-office answering: a one-time code opens one partner's response on the practice's device, and ends clean."""

import re
import secrets
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assessments import office
from assessments.models import OfficeCode, Response
from practice.models import AuditEvent
from tests.assessments.answering_helpers import answer_everything, start
from tests.conftest import client_for, make_assignment, page_text


def office_device():
    """A browser on an address of its own: the throttle's counts live in a cache shared by parallel tests."""
    return Client(REMOTE_ADDR=f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}")


def code_for(world, position="A"):
    assignment, tokens = make_assignment(world.couple)
    response = Response.objects.get(assignment=assignment, partner__position=position)
    reply = client_for(world.owner).post(reverse("assessments:answer_here", args=[response.pk]))
    assert reply.status_code == 200
    shown = re.search(r'class="office-code"[^>]*><strong>(\d{3}) (\d{3})</strong>', reply.content.decode())
    return assignment, tokens, response, shown.group(1) + shown.group(2)


def enter(client, code):
    return client.post(reverse("assessments:here"), {"code": code})


def begin(client, response):
    """Confirm identity and consent on the device, as start() does after a link."""
    client.post(reverse("assessments:welcome", args=[response.pk]))
    client.post(reverse("assessments:consent", args=[response.pk]), {"understood": "on", "share_summary": "yes"})
    client.response_id = response.pk


def test_the_code_is_shown_once_stored_hashed_and_opens_the_partners_response(world):
    assignment, tokens, response, code = code_for(world)
    stored = OfficeCode.objects.get(response=response)
    assert code not in stored.code_hash and stored.code_hash == office.code_hash(code)
    assert timedelta(minutes=29) < stored.expires_at - timezone.now() <= timedelta(minutes=30)
    device = office_device()
    opened = enter(device, code)
    assert opened.status_code == 302 and opened["Location"] == reverse("assessments:welcome", args=[response.pk])
    assert code not in opened["Location"]
    assert "You are answering as Taylor" in page_text(device.get(opened["Location"]))
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"response.office_code_created", "response.office_code_used"} <= actions


def test_a_code_works_once(world):
    assignment, tokens, response, code = code_for(world)
    assert enter(office_device(), code).status_code == 302
    again = enter(office_device(), code)
    assert again.status_code == 400 and "does not open anything" in page_text(again)


def test_an_expired_code_opens_nothing(world):
    assignment, tokens, response, code = code_for(world)
    OfficeCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    reply = enter(office_device(), code)
    assert reply.status_code == 400 and "Taylor" not in page_text(reply)


def test_a_new_code_stops_the_earlier_one(world):
    assignment, tokens, response, first = code_for(world)
    reply = client_for(world.owner).post(reverse("assessments:answer_here", args=[response.pk]))
    assert reply.status_code == 200
    assert enter(office_device(), first).status_code == 400


def test_guessing_is_throttled_per_address_even_for_the_right_code(world):
    assignment, tokens, response, code = code_for(world)
    wrong = "000000" if code != "000000" else "111111"
    device = office_device()
    for _ in range(office.MAX_FAILURES):
        assert enter(device, wrong).status_code == 400
    refused = enter(device, code)
    assert refused.status_code == 429 and "Too many codes" in page_text(refused)
    assert OfficeCode.objects.get(response=response).used_at is None  # the right code is not spent
    assert enter(office_device(), code).status_code == 302  # another address is not held back


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "abcdef", "12 34 5x"])
def test_malformed_codes_are_a_form_error(world, typed):
    reply = enter(office_device(), typed)
    assert reply.status_code == 400 and "code" in page_text(reply).lower()


def test_the_code_is_never_made_for_a_submitted_partner_or_by_someone_else(world):
    assignment, tokens = make_assignment(world.couple)
    a = start(tokens["A"])
    answer_everything(a)
    a.post(reverse("assessments:submit", args=[a.response_id]))
    refused = client_for(world.owner).post(reverse("assessments:answer_here", args=[a.response_id]), follow=True)
    assert "can no longer answer" in page_text(refused) and not OfficeCode.objects.exists()
    b = Response.objects.get(assignment=assignment, partner__position="B")
    for user in (world.colleague, world.outsider):
        assert client_for(user).post(reverse("assessments:answer_here", args=[b.pk])).status_code == 404
    assert not OfficeCode.objects.exists()


def test_submitting_in_office_ends_the_visit_and_the_next_partner_cannot_reach_the_first(world):
    assignment, tokens, a_response, code = code_for(world)
    device = office_device()
    enter(device, code)
    begin(device, a_response)
    answer_everything(device, response_id=a_response.pk)
    done = device.post(reverse("assessments:submit", args=[a_response.pk]), follow=True)
    text = page_text(done)
    assert done.redirect_chain[-1][0] == reverse("assessments:here")
    assert "hand the device back" in text and "Taylor" not in text and "results" not in text.lower()
    for url in (
        reverse("assessments:results", args=[a_response.pk]),
        reverse("assessments:welcome", args=[a_response.pk]),
    ):
        assert device.get(url).status_code == 403
    # The other partner on the same device.
    b_response = Response.objects.get(assignment=assignment, partner__position="B")
    reply = client_for(world.owner).post(reverse("assessments:answer_here", args=[b_response.pk]))
    b_code = re.search(r"<strong>(\d{3}) (\d{3})</strong>", reply.content.decode()).groups()
    assert enter(device, "".join(b_code)).status_code == 302
    assert "Jordan" in page_text(device.get(reverse("assessments:welcome", args=[b_response.pk])))
    for name in ("welcome", "results", "review", "support"):
        page = device.get(reverse(f"assessments:{name}", args=[a_response.pk]))
        assert page.status_code == 403 and "Taylor" not in page_text(page)
    ended = AuditEvent.objects.filter(action="response.office_session_ended").values_list("detail", flat=True)
    assert [d.get("why") for d in ended] == ["submitted"]


def test_five_idle_minutes_end_the_visit_on_the_server(world):
    assignment, tokens, response, code = code_for(world)
    device = office_device()
    enter(device, code)
    begin(device, response)
    section = reverse("assessments:section", args=[response.pk, 1])
    assert device.get(section).status_code == 200
    session = device.session
    session[office.SEEN_KEY] = int(timezone.now().timestamp()) - office.IDLE_SECONDS - 1
    session.save()
    idle = device.get(section)
    assert idle.status_code == 302 and idle["Location"] == reverse("assessments:here")
    assert device.get(section).status_code == 403
    save = device.post(reverse("assessments:save_answer", args=[response.pk]), {"item": "COM1", "value": 3, "seq": 1})
    assert save.status_code == 403
    assert AuditEvent.objects.filter(action="response.office_session_ended", detail__why="idle").exists()


def test_an_ordinary_link_session_is_not_an_office_session(world):
    assignment, tokens = make_assignment(world.couple)
    a = start(tokens["A"])
    session = a.session
    session[office.SEEN_KEY] = 0
    session.save()
    assert a.get(reverse("assessments:section", args=[a.response_id, 1])).status_code == 200


def test_the_page_ending_an_office_visit_leaves_the_code_page(world):
    assignment, tokens, response, code = code_for(world)
    device = office_device()
    enter(device, code)
    ended = device.post(reverse("assessments:here_end"))
    assert ended.status_code == 302 and ended["Location"] == reverse("assessments:here")
    assert device.get(reverse("assessments:welcome", args=[response.pk])).status_code == 403
