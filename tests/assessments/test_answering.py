import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assessments import answering
from assessments.loader import load_definition
from assessments.models import Answer, Assignment, Instrument
from tests.assessments.answering_helpers import open_link, save, section_codes, start
from tests.conftest import make_assignment, page_text


def stored(response_id, code):
    answer = Answer.objects.filter(response_id=response_id, item__code=code).first()
    return None if answer is None else (answer.value, answer.seq)


def checked(page, code):
    """The value of the checked radio of one item on a rendered page, or None."""
    match = re.search(rf'name="item-{code}" value="(\w+)" checked', page)
    return match.group(1) if match else None


@pytest.fixture
def partner(world):
    assignment, tokens = make_assignment(world.couple)
    client = start(tokens["A"])
    client.token = tokens["A"]
    client.assignment = assignment
    return client


# --- The first pages --------------------------------------------------------------------------


@pytest.mark.smoke
def test_partner_confirms_who_they_are_then_reads_the_consent_note_then_lands_on_the_first_section(world):
    assignment, tokens = make_assignment(world.couple)
    client, reply = open_link(tokens["B"])
    welcome = client.get(reply["Location"])
    text = page_text(welcome)
    assert "You are answering as Jordan" in text
    assert f"Not you? Stop here and ask {world.owner.get_full_name()} for your own link." in text
    consent = client.post(reply["Location"], follow=True)
    text = page_text(consent)
    assert "Your counselor sees your answers." in text
    assert "Your partner does not." in text
    assert "a reflection, not a diagnosis" in text
    response_b = assignment.responses.get(partner__position="B")
    first = client.post(
        reverse("assessments:consent", args=[response_b.pk]), {"understood": "on", "share_summary": "no"}
    )
    assert first["Location"] == reverse("assessments:section", args=[response_b.pk, 1])
    response_b.refresh_from_db()
    assert response_b.share_consent is False and response_b.consented_at and response_b.identity_confirmed_at


def test_consent_needs_the_box_ticked_and_a_sharing_choice(world):
    assignment, tokens = make_assignment(world.couple)
    client, reply = open_link(tokens["A"])
    client.post(reply["Location"])
    response_a = assignment.responses.get(partner__position="A")
    refused = client.post(reverse("assessments:consent", args=[response_a.pk]), {})
    assert refused.status_code == 400
    text = page_text(refused)
    assert "Please tick the box" in text and "Please choose whether a summary may be shared" in text
    response_a.refresh_from_db()
    assert response_a.consented_at is None


def test_sections_wait_until_identity_and_consent_are_given(world):
    assignment, tokens = make_assignment(world.couple)
    client, reply = open_link(tokens["A"])
    response_a = assignment.responses.get(partner__position="A")
    section = client.get(reverse("assessments:section", args=[response_a.pk, 1]))
    assert section["Location"] == reverse("assessments:welcome", args=[response_a.pk])
    assert save(client, "COM1", 4, 1, response_a.pk).status_code == 409
    assert not Answer.objects.exists()


# --- Autosave ---------------------------------------------------------------------------------


@pytest.mark.smoke
def test_a_chosen_answer_is_saved_at_once_and_shown_again(partner):
    assert save(partner, "COM1", 4, 1).status_code == 204
    assert save(partner, "SAF1", "declined", 1).status_code == 204
    assert stored(partner.response_id, "COM1") == (4, 1)
    assert stored(partner.response_id, "SAF1") == (None, 1)
    page = page_text(partner.get(reverse("assessments:section", args=[partner.response_id, 1])))
    assert checked(page, "COM1") == "4"
    assert "1 of 55 questions answered" in page or "2 of 55 questions answered" in page


@pytest.mark.smoke
def test_answers_survive_closing_the_browser_and_reopening_the_link_on_another_device(partner):
    first, second = section_codes()[0], section_codes()[1]
    for code in first:
        assert save(partner, code, 5, 1).status_code == 204
    assert save(partner, second[0], 2, 1).status_code == 204
    # The browser is closed; the same link is opened on a phone.
    phone, reply = open_link(partner.token)
    landing = phone.post(reply["Location"])
    assert landing["Location"] == reverse("assessments:section", args=[partner.response_id, 2])
    page = page_text(phone.get(landing["Location"]))
    assert checked(page, second[0]) == "2"
    page = page_text(phone.get(reverse("assessments:section", args=[partner.response_id, 1])))
    assert all(checked(page, code) == "5" for code in first)


def test_a_save_with_an_older_sequence_number_does_not_overwrite_a_newer_one(partner):
    assert save(partner, "COM2", 5, 7).status_code == 204
    late = save(partner, "COM2", 1, 6)
    assert late.status_code == 409
    assert "a newer answer to this question was already saved" in late.content.decode()
    assert stored(partner.response_id, "COM2") == (5, 7)


def test_a_repeated_save_is_accepted_without_change_so_a_retry_after_a_lost_reply_succeeds(partner):
    assert save(partner, "COM2", 3, 2).status_code == 204
    assert save(partner, "COM2", 3, 2).status_code == 204
    assert stored(partner.response_id, "COM2") == (3, 2)
    # The same number with a different value is not a retry but a stale page: refused.
    assert save(partner, "COM2", 4, 2).status_code == 409
    assert stored(partner.response_id, "COM2") == (3, 2)


@pytest.mark.smoke
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    choices=st.lists(st.sampled_from(["1", "2", "3", "4", "5", "declined"]), min_size=1, max_size=8),
    data=st.data(),
)
def test_reordered_and_duplicated_saves_always_end_with_the_newest_choice(partner, choices, data):
    """The partner made choices 1..n; the network delivers them late, twice, in any order."""
    Answer.objects.filter(response_id=partner.response_id).delete()
    deliveries = data.draw(
        st.lists(st.integers(min_value=1, max_value=len(choices)), min_size=1, max_size=3 * len(choices))
    )
    deliveries = data.draw(st.permutations(deliveries + [len(choices)]))  # the last choice arrives at least once
    for seq in deliveries:
        save(partner, "FRI3", choices[seq - 1], seq)
    value, seq = stored(partner.response_id, "FRI3")
    assert seq == len(choices)
    assert answering.form_value(value) == choices[-1]


def test_the_save_endpoint_costs_at_most_three_queries(partner, django_assert_max_num_queries):
    save(partner, "COM1", 3, 1)  # warms the in-process item cache, as any running server is
    # 1 the session, 2 the response with its assignment, couple and practice, 3 the upsert.
    with django_assert_max_num_queries(3):
        assert save(partner, "COM1", 4, 2).status_code == 204
    with django_assert_max_num_queries(3):
        assert save(partner, "COM1", 2, 1).status_code == 409


def test_the_save_endpoint_skips_the_session_write_between_refreshes(partner):
    from django.test.utils import CaptureQueriesContext

    save(partner, "COM1", 3, 1)
    with CaptureQueriesContext(connection) as queries:
        save(partner, "COM1", 4, 2)
    assert not any("django_session" in q["sql"] and q["sql"].startswith("UPDATE") for q in queries)


# --- Bad input on the save endpoint -----------------------------------------------------------


def other_instrument():
    definition = Instrument.current().definition
    other = {**definition, "slug": "other", "title": "Another questionnaire"}
    other["sections"] = [
        {**definition["sections"][0], "items": [{**definition["sections"][0]["items"][0], "id": "ZZZ1"}]}
    ]
    other["domains"] = [d for d in definition["domains"] if d["key"] == "communication"]
    return load_definition(other)


@pytest.mark.smoke
@pytest.mark.parametrize(
    ("item", "value", "seq", "message"),
    [
        ("ZZZ1", "3", "1", "This question is not part of your assessment."),
        ("NOPE", "3", "1", "This question is not part of your assessment."),
        ("COM1", "6", "1", "Please choose an answer from 1 to 5."),
        ("COM1", "0", "1", "Please choose an answer from 1 to 5."),
        ("COM1", "abc", "1", "Please choose an answer from 1 to 5."),
        ("COM1", "3", "0", "Please choose one of the answers shown."),
        ("COM1", "3", "-4", "Please choose one of the answers shown."),
        ("COM1", "3", "99999999999", "Please choose one of the answers shown."),
        ("COM1", "3", "x", "Please choose one of the answers shown."),
    ],
)
def test_a_bad_save_gets_a_clear_4xx_and_changes_nothing(partner, item, value, seq, message):
    other_instrument()
    assert save(partner, "COM1", 2, 1).status_code == 204
    reply = save(partner, item, value, seq)
    assert reply.status_code == 400
    assert message in reply.content.decode()
    assert stored(partner.response_id, "COM1") == (2, 1)
    assert Answer.objects.count() == 1


def test_a_save_for_the_other_partners_response_is_refused(partner):
    other = partner.assignment.responses.get(partner__position="B")
    reply = save(partner, "COM1", 4, 1, response_id=other.pk)
    assert reply.status_code == 403
    assert "please open your personal link again" in reply.content.decode()
    assert not Answer.objects.filter(response=other).exists()


def test_a_save_without_the_link_is_refused_and_creates_no_session(partner):
    from django.contrib.sessions.models import Session

    sessions = Session.objects.count()
    reply = save(Client(), "COM1", 4, 1, response_id=partner.response_id)
    assert reply.status_code == 403
    assert not Answer.objects.exists()
    assert Session.objects.count() == sessions


def test_a_save_after_the_link_expired_is_refused_and_keeps_every_answer(partner):
    save(partner, "COM1", 4, 1)
    Assignment.objects.filter(pk=partner.assignment.pk).update(due_at=timezone.now() - timedelta(days=30))
    reply = save(partner, "COM1", 2, 2)
    assert reply.status_code == 410
    assert "this link has expired" in reply.content.decode()
    assert stored(partner.response_id, "COM1") == (4, 1)
    page = partner.get(reverse("assessments:section", args=[partner.response_id, 1]))
    assert page.status_code == 410 and "This link has expired" in page_text(page)
    counselor = partner.assignment.couple.counselor.get_full_name()
    assert f"Please ask {counselor} to send you a new link. Every answer you already gave is kept." in page_text(page)


def test_a_save_after_the_assessment_was_cancelled_is_refused(partner):
    save(partner, "COM1", 4, 1)
    Assignment.objects.filter(pk=partner.assignment.pk).update(status=Assignment.Status.CANCELLED)
    reply = save(partner, "COM1", 2, 2)
    assert reply.status_code == 410 and "no longer opens" in reply.content.decode()
    assert stored(partner.response_id, "COM1") == (4, 1)


def test_the_save_endpoint_only_accepts_posts(partner):
    assert partner.get(reverse("assessments:save_answer", args=[partner.response_id])).status_code == 405


# --- Pages without JavaScript -----------------------------------------------------------------


def section_form(client, index):
    """The fields a browser without JavaScript would post for a section page, as rendered."""
    page = page_text(client.get(reverse("assessments:section", args=[client.response_id, index])))
    fields = dict(re.findall(r'<input type="hidden" name="(seq-\w+)" value="(\d+)"', page))
    return page, fields


@pytest.mark.smoke
def test_a_section_saves_as_a_plain_form_and_moves_on(partner):
    page, fields = section_form(partner, 1)
    assert 'src="/static/js/autosave.js"' in page and "<script>" not in page
    codes = section_codes()[0]
    fields.update({f"item-{code}": "4" for code in codes})
    fields[f"item-{codes[0]}"] = "declined"
    reply = partner.post(reverse("assessments:section", args=[partner.response_id, 1]), fields)
    assert reply["Location"] == reverse("assessments:section", args=[partner.response_id, 2])
    assert stored(partner.response_id, codes[0]) == (None, 1)
    assert all(stored(partner.response_id, code) == (4, 1) for code in codes[1:])
    back = partner.post(reverse("assessments:section", args=[partner.response_id, 2]), {"back": "1"})
    assert back["Location"] == reverse("assessments:section", args=[partner.response_id, 1])


def test_a_plain_form_with_a_bad_value_saves_nothing_and_keeps_the_choices_on_the_page(partner):
    _, fields = section_form(partner, 1)
    codes = section_codes()[0]
    fields.update({f"item-{codes[0]}": "3", f"item-{codes[1]}": "9"})
    reply = partner.post(reverse("assessments:section", args=[partner.response_id, 1]), fields)
    assert reply.status_code == 400
    text = page_text(reply)
    assert "Nothing on this page was saved" in text
    assert checked(text, codes[0]) == "3"
    assert not Answer.objects.exists()


def test_a_stale_page_posted_later_does_not_undo_a_newer_autosave(partner):
    _, stale = section_form(partner, 1)  # a tab left open
    code = section_codes()[0][0]
    assert save(partner, code, 5, 1).status_code == 204  # chosen later, in another tab
    stale[f"item-{code}"] = "1"
    partner.post(reverse("assessments:section", args=[partner.response_id, 1]), stale)
    assert stored(partner.response_id, code) == (5, 1)


def test_an_unknown_section_is_a_404(partner):
    assert partner.get(reverse("assessments:section", args=[partner.response_id, 99])).status_code == 404
    assert partner.get(reverse("assessments:section", args=[partner.response_id, 0])).status_code == 404


# --- Order, links, sessions -------------------------------------------------------------------


def test_items_are_shuffled_per_partner_and_stay_in_that_order(world):
    assignment, _ = make_assignment(world.couple)
    a, b = assignment.responses.order_by("partner__position")
    a.order_seed, b.order_seed = 1, 2
    first = [[q.code for q in p.questions] for p in answering.pages(a)]
    again = [[q.code for q in p.questions] for p in answering.pages(a)]
    other = [[q.code for q in p.questions] for p in answering.pages(b)]
    assert first == again
    assert first != other
    assert [sorted(codes) for codes in first] == [sorted(codes) for codes in other]
    # Sections that must keep their order (safety, help-seeking) are never shuffled.
    assert first[-1] == other[-1] == section_codes()[-1]


def test_a_replaced_link_also_ends_the_session_it_opened(partner):
    save(partner, "COM1", 4, 1)
    response = partner.assignment.responses.get(pk=partner.response_id)
    new_token = response.issue_link()
    reply = partner.get(reverse("assessments:section", args=[partner.response_id, 1]))
    assert reply.status_code == 403
    assert save(partner, "COM1", 2, 2).status_code == 403
    fresh = start(new_token)
    page = page_text(fresh.get(reverse("assessments:section", args=[fresh.response_id, 1])))
    assert checked(page, "COM1") == "4"


def test_partner_pages_are_never_cached_by_the_browser(partner):
    reply = partner.get(reverse("assessments:section", args=[partner.response_id, 1]))
    assert "no-store" in reply["Cache-Control"]


def test_a_section_page_costs_a_handful_of_queries(partner, django_assert_max_num_queries):
    partner.get(reverse("assessments:section", args=[partner.response_id, 1]))
    # 1 session, 2 response with assignment, couple, practice and counselor, 3 its answers,
    # 4-6 the session written back (savepoint, update, release).
    with django_assert_max_num_queries(6):
        assert partner.get(reverse("assessments:section", args=[partner.response_id, 2])).status_code == 200


# --- In a real browser ------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.mark.e2e
@pytest.mark.skipif(not __import__("os").path.exists(CHROMIUM), reason="needs Debian's Chromium")
def test_in_a_browser_answers_save_as_chosen_and_a_lost_connection_shows_a_retrying_state(live_server, world):
    from playwright.sync_api import sync_playwright

    _, tokens = make_assignment(world.couple)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844})
            page = context.new_page()
            page.goto(live_server.url + reverse("assessments:open_link", args=[tokens["A"]]))
            page.click("button.primary")
            page.wait_for_url("**/consent/")
            page.check("input[value=yes]")
            page.check("input[name=understood]")
            page.click("button.primary")
            page.wait_for_url("**/section/1/")
            status = page.locator("[data-autosave-status]")
            questions = page.locator("fieldset.question")
            questions.nth(0).locator("label.choice").nth(3).click()
            page.locator("[data-autosave-status][data-state='saved']").wait_for()
            assert status.inner_text() == "All answers saved."
            context.set_offline(True)
            questions.nth(1).locator("label.choice").nth(1).click()
            page.locator("[data-autosave-status][data-state='retrying']").wait_for()
            assert "Not saved yet — retrying" in questions.nth(1).inner_text()
            context.set_offline(False)
            page.locator("[data-autosave-status][data-state='saved']").wait_for(timeout=20000)
            page.reload()
            assert page.locator("input[type=radio]:checked").count() == 2
        finally:
            browser.close()
    first = [q.code for q in answering.pages(Answer.objects.first().response)[0].questions]
    assert [stored(Answer.objects.first().response_id, code) for code in first[:2]] == [(4, 1), (2, 1)]
