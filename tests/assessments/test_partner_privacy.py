"""A partner reaches only their own response: never the other's answers, never any safety information."""

import contextlib
import re

import pytest
from django.test import Client
from django.urls import NoReverseMatch, reverse

from assessments.models import Response
from tests.assessments.answering_helpers import answer_everything, open_link, save, section_codes, start
from tests.conftest import make_assignment, page_text

pytestmark = pytest.mark.smoke

# Words that would betray the other partner or anyone's safety answers on a partner's page.
TALK_NOTE = "TalkNoteSentinel about the holidays"
LEAKS = (
    "Taylor",
    "taylor@example.com",
    "Support is here",
    "needs your attention",
    "urgent",
    "concern",
    "danger",
    TALK_NOTE,
    "For the session",
)


def partner_urls(response_id):
    """Every page a partner can GET, by URL name."""
    names = ("welcome", "consent", "review", "results", "support")
    urls = [reverse(f"assessments:{name}", args=[response_id]) for name in names]
    urls += [reverse("assessments:section", args=[response_id, i]) for i in range(1, len(section_codes()) + 1)]
    with contextlib.suppress(NoReverseMatch):  # the shared summary, once it exists
        urls.append(reverse("assessments:shared_summary", args=[response_id]))
    return urls


def visit_all(client, response_id):
    """GET every partner page (following redirects); returns [(url, status, text)]."""
    seen = []
    for url in partner_urls(response_id):
        reply = client.get(url, follow=True)
        seen.append((url, reply.status_code, page_text(reply)))
    return seen


def assert_nothing_leaks(pages):
    for url, status, text in pages:
        assert status < 500, url
        for word in LEAKS:
            assert word.lower() not in text.lower(), f"{word!r} on {url}"
        checked = re.findall(r'value="(\w+)" checked', text)
        assert set(checked) <= {"2", "1", "declined"}, f"someone else's answers on {url}"


@pytest.fixture
def couple_answering(world):
    """Taylor (A) answered everything with 5, urgent safety answers, asked to talk about one item
    with a private note, and submitted."""
    assignment, tokens = make_assignment(world.couple)
    a = start(tokens["A"])
    talk = {"item": section_codes()[0][0], "talk": "on", "note": TALK_NOTE, "seq": 1}
    assert a.post(reverse("assessments:save_talk", args=[a.response_id]), talk).status_code == 204
    assert TALK_NOTE in page_text(a.get(reverse("assessments:section", args=[a.response_id, 1])))
    answer_everything(a, value=5, safety=3)
    a.post(reverse("assessments:submit", args=[a.response_id]))
    assert Response.objects.get(pk=a.response_id).safety_level == "urgent"
    return assignment, tokens, a


def test_no_page_the_other_partner_can_reach_shows_the_partners_answers_or_safety(couple_answering):
    assignment, tokens, a = couple_answering
    own = page_text(a.get(reverse("assessments:results", args=[a.response_id])))
    assert "Support is here" in own and "Taylor" in own  # the markers are real: Taylor sees them
    b = start(tokens["B"])
    assert_nothing_leaks(visit_all(b, b.response_id))  # before answering
    answer_everything(b, value=2, safety=1)
    save(b, section_codes()[0][0], "declined", 2)
    assert_nothing_leaks(visit_all(b, b.response_id))  # answering
    b.post(reverse("assessments:submit", args=[b.response_id]))
    pages = visit_all(b, b.response_id)  # submitted
    assert_nothing_leaks(pages)
    results = next(text for url, _, text in pages if url.endswith("/results/"))
    assert "Your results, Jordan" in results
    # Taylor's answers (all 5) give 60 in every couple domain; Jordan's (all 2) give 45.
    assert re.search(r'<td class="num"[^>]*>45</td>', results)
    assert not re.search(r'<td class="num"[^>]*>60</td>', results)


def test_the_other_partners_pages_and_actions_are_refused_with_nothing_shown(couple_answering):
    assignment, tokens, a = couple_answering
    b = start(tokens["B"])
    for url in partner_urls(a.response_id):
        reply = b.get(url)
        assert reply.status_code in (403, 404), url
        text = page_text(reply)
        assert all(word.lower() not in text.lower() for word in LEAKS)
    assert save(b, "COM1", 1, 99, response_id=a.response_id).status_code == 403
    assert b.post(reverse("assessments:submit", args=[a.response_id])).status_code == 403


def test_a_browser_without_the_link_sees_nothing(couple_answering):
    assignment, tokens, a = couple_answering
    stranger = Client()
    for url in partner_urls(a.response_id):
        reply = stranger.get(url)
        assert reply.status_code in (403, 404), url
        assert all(word.lower() not in page_text(reply).lower() for word in LEAKS)


def test_the_token_never_appears_in_a_url_after_the_first_request(world):
    assignment, tokens = make_assignment(world.couple)
    token = tokens["A"]
    client, reply = open_link(token)
    seen_urls = [reply["Location"]]
    client.post(reply["Location"])
    response_id = int(reply["Location"].strip("/").split("/")[1])
    client.post(reverse("assessments:consent", args=[response_id]), {"understood": "on", "share_summary": "yes"})
    answer_everything(client, value=4, response_id=response_id)
    submitted = client.post(reverse("assessments:submit", args=[response_id]))
    seen_urls.append(submitted["Location"])
    for url in partner_urls(response_id):
        page = client.get(url, follow=True)
        seen_urls += [hop for hop, _status in page.redirect_chain]
        seen_urls += re.findall(r'(?:href|action|src)="([^"]+)"', page.content.decode())
    assert seen_urls and all(token not in url for url in seen_urls)
    assert token not in str(dict(client.session))


def test_partner_pages_show_no_staff_navigation(couple_answering):
    assignment, tokens, a = couple_answering
    b = start(tokens["B"])
    text = page_text(b.get(reverse("assessments:section", args=[b.response_id, 1])))
    assert "Caseload" not in text and "Sign out" not in text
