import copy
import re
import threading

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse

from assessments import scores, workflows
from assessments.models import Answer, Assignment, Response, SafetyAlert, Score
from practice.models import Job
from tests.assessments.answering_helpers import answer_everything, save, section_codes, start
from tests.clients.factories import answer
from tests.conftest import deliver, make_assignment, page_text


@pytest.fixture
def partner(world):
    assignment, tokens = make_assignment(world.couple)
    client = start(tokens["A"])
    client.assignment = assignment
    client.tokens = tokens
    return client


def submit(client, response_id=None):
    return client.post(reverse("assessments:submit", args=[response_id or client.response_id]))


def test_review_lists_unanswered_questions_with_links_back_and_refuses_an_early_submit(partner):
    first = section_codes()[0]
    for code in first[:3]:
        save(partner, code, 4, 1)
    review = partner.get(reverse("assessments:review", args=[partner.response_id]))
    text = page_text(review)
    assert "Questions you have not answered" in text
    assert f'href="{reverse("assessments:section", args=[partner.response_id, 1])}#item-' in text
    assert "Talking and being understood: answer 1 more statement." in re.sub(r"<[^>]+>", "", text)
    assert "Submit my answers" not in text
    refused = submit(partner)
    assert refused.status_code == 400
    assert "Not submitted yet" in page_text(refused)
    assert Response.objects.get(pk=partner.response_id).submitted_at is None
    assert Answer.objects.filter(response_id=partner.response_id).count() == 3


def test_prefer_not_to_answer_does_not_count_towards_a_score(partner):
    answer_everything(partner)
    for code in section_codes()[0][:2]:
        save(partner, code, "declined", 2)
    assert submit(partner).status_code == 400
    save(partner, section_codes()[0][0], 3, 3)
    assert submit(partner).status_code == 302


@pytest.mark.smoke
def test_a_partner_submits_once_and_sees_their_own_results_in_plain_words(partner):
    answer_everything(partner, value=4)
    review = page_text(partner.get(reverse("assessments:review", args=[partner.response_id])))
    assert "You have answered every question." in review and "Submit my answers" in review
    reply = submit(partner)
    assert reply["Location"] == reverse("assessments:results", args=[partner.response_id])
    again = submit(partner)  # the double click
    assert again["Location"] == reply["Location"]
    assert Score.objects.filter(response_id=partner.response_id).count() == 1
    text = page_text(partner.get(reply["Location"]))
    assert "Your results, Taylor" in text
    assert "This is a reflection, not a diagnosis." in text
    # Parts are named as on the pages answered, each band's meaning is said once, and the page
    # says what happens next.
    assert "Talking and being understood" in text and "Communication & feeling understood" not in text
    assert "Strong (70 or more)" in text or "Mixed (50 to 69)" in text
    assert text.count("A strength for you right now.") <= 1
    assert text.count("Partly good, partly worth working on.") <= 1
    assert "What happens next" in text
    assert "Bands describe where a score falls" in text
    # Nothing is left to finish: the button that ends the visit says so.
    assert "Close" in text and "Finish for now" not in text
    other = start(partner.tokens["B"])  # still answering: there is something to finish
    assert "Finish for now" in page_text(other.get(reverse("assessments:section", args=[other.response_id, 1])))


def test_after_submitting_the_answers_are_read_only(partner):
    answer_everything(partner, value=4)
    submit(partner)
    # No page shows the answers again: whoever holds the phone later sees the results only.
    results = reverse("assessments:results", args=[partner.response_id])
    for index in (1, len(section_codes())):
        assert partner.get(reverse("assessments:section", args=[partner.response_id, index]))["Location"] == results
    refused = save(partner, section_codes()[0][0], 1, 9)
    assert refused.status_code == 409 and "already submitted" in refused.content.decode()
    posted = partner.post(reverse("assessments:section", args=[partner.response_id, 1]), {"item-COM1": "1"})
    assert posted["Location"] == results
    assert Answer.objects.get(response_id=partner.response_id, item__code="COM1").value == 4
    assert partner.get(reverse("assessments:review", args=[partner.response_id]))["Location"].endswith("/results/")


def test_results_wait_for_the_submission(partner):
    reply = partner.get(reverse("assessments:results", args=[partner.response_id]))
    assert reply["Location"] == reverse("assessments:section", args=[partner.response_id, 1])


@pytest.mark.smoke
def test_both_partners_submitting_completes_the_assignment(partner):
    answer_everything(partner, value=4)
    submit(partner)
    other = start(partner.tokens["B"])
    answer_everything(other, value=3)
    submit(other)
    assignment = Assignment.objects.get(pk=partner.assignment.pk)
    assert assignment.status == Assignment.Status.COMPLETED
    assert Score.objects.filter(response__assignment=assignment).count() == 2


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="concurrency is proven on PostgreSQL")
def test_ten_concurrent_submits_produce_exactly_one_submission(transactional_db, world):
    assignment, tokens = make_assignment(world.couple)
    partner = start(tokens["A"])
    answer_everything(partner, value=4)
    browsers = []
    for _ in range(10):
        browser = Client()
        browser.cookies = copy.deepcopy(partner.cookies)  # ten tabs of the same browser
        browsers.append(browser)
    barrier = threading.Barrier(10)
    replies, errors = [], []

    def click(browser):
        try:
            barrier.wait(timeout=20)
            replies.append(submit(browser, partner.response_id))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=click, args=(b,)) for b in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert [r.status_code for r in replies] == [302] * 10
    assert {r["Location"] for r in replies} == {reverse("assessments:results", args=[partner.response_id])}
    response = Response.objects.get(pk=partner.response_id)
    assert response.submitted_at is not None
    assert Score.objects.filter(response=response).count() == 1
    from practice.models import AuditEvent

    assert AuditEvent.objects.filter(action="response.submit", object_id=str(response.pk)).count() == 1


# --- Safety -----------------------------------------------------------------------------------


def post_safety_section(client, values):
    index = len(section_codes())
    fields = {f"item-{code}": str(values.get(code, 1)) for code in section_codes()[-1]}
    return client.post(reverse("assessments:section", args=[client.response_id, index]), fields)


@pytest.mark.smoke
def test_concerning_safety_answers_show_support_at_once_with_a_quick_exit(partner):
    reply = post_safety_section(partner, {"SAF5": 3})
    assert reply["Location"] == reverse("assessments:support", args=[partner.response_id])
    text = page_text(partner.get(reply["Location"]))
    assert "Support is here if you need it" in text
    assert 'data-exit-to="https://www.weather.com/"' in text and 'class="quick-exit"' in text
    assert Response.objects.get(pk=partner.response_id).safety_level == "concern"
    # The counselor's alert, written with the answers that raise it, and its e-mail waiting in the outbox.
    (alert,) = SafetyAlert.objects.filter(response_id=partner.response_id)
    assert alert.level == "concern" and alert.is_open
    assert Job.objects.filter(kind="safety_alert", payload={"alert": alert.pk}).count() == 1


def test_calm_safety_answers_go_straight_on_to_the_review(partner):
    reply = post_safety_section(partner, {})
    assert reply["Location"] == reverse("assessments:review", args=[partner.response_id])
    assert Response.objects.get(pk=partner.response_id).safety_level == "none"
    support = partner.get(reverse("assessments:support", args=[partner.response_id]))
    assert support.status_code == 302


def test_the_safety_section_always_offers_a_quick_exit(partner):
    page = page_text(partner.get(reverse("assessments:section", args=[partner.response_id, len(section_codes())])))
    assert 'class="quick-exit"' in page


def test_the_counselor_is_alerted_once_and_the_email_says_only_that_a_response_needs_attention(partner):
    post_safety_section(partner, {"SAF1": 3})
    post_safety_section(partner, {"SAF1": 3, "SAF2": 2})  # answered again: still one alert
    deliver()
    deliver()
    counselor = partner.assignment.couple.counselor.email
    (message,) = [m for m in mail.outbox if m.to == [counselor]]
    assert SafetyAlert.objects.get(response_id=partner.response_id).notified_at is not None
    assert message.to == [partner.assignment.couple.counselor.email]
    assert message.subject == "Riverside Counseling: a response needs your attention"
    body = message.body + message.alternatives[0][0]
    assert "needs your attention" in body
    alert = SafetyAlert.objects.get(response_id=partner.response_id)
    comparison = reverse("assessments:comparison", args=[partner.assignment.couple.pk, partner.assignment.pk])
    assert f"{comparison}#alert-{alert.pk}" in body  # straight to the alert
    for secret in ("Taylor", "Jordan", "Taylor & Jordan", "urgent", "concern", "safety", "hit", "afraid"):
        assert secret.lower() not in (message.subject + body).lower()


def test_a_safety_level_reached_only_at_submit_still_alerts(partner):
    answer_everything(partner, value=4, safety=1)
    # An answer that reached the database without passing the safety check (e.g. stored before).
    Answer.objects.filter(response_id=partner.response_id, item__code="SAF3").update(value=3)
    submit(partner)
    assert Response.objects.get(pk=partner.response_id).safety_level == "urgent"
    assert SafetyAlert.objects.get(response_id=partner.response_id).level == "urgent"
    score = Score.objects.get(response_id=partner.response_id)
    assert "safety" not in score.domains and not hasattr(score, "safety_level")


@pytest.mark.smoke
def test_a_partner_answers_everything_and_submits_with_plain_forms_only(partner):
    """The whole journey as a browser without JavaScript makes it: only form posts, no autosave."""
    url = reverse("assessments:section", args=[partner.response_id, 1])
    for _ in section_codes():
        page = page_text(partner.get(url))
        fields = dict(re.findall(r'<input type="hidden" name="(seq-\w+)" value="(\d+)"', page))
        value = "1" if "Your safety in the past 12 months" in page else "4"
        fields.update({f"item-{code}": value for code in re.findall(r'name="item-(\w+)" value="4"', page)})
        fields["csrfmiddlewaretoken"] = "unused-by-the-test-client"
        url = partner.post(url, fields)["Location"]
    assert url == reverse("assessments:review", args=[partner.response_id])
    review = page_text(partner.get(url))
    form = re.search(r'<form method="post" action="([^"]+)">', review.split("Ready to submit")[1]).group(1)
    assert form == reverse("assessments:submit", args=[partner.response_id])
    results = partner.post(form, follow=True)
    assert "Your results, Taylor" in page_text(results)
    assert Answer.objects.filter(response_id=partner.response_id).count() == len(sum(section_codes(), []))


def test_a_concerning_safety_answer_saved_on_its_own_shows_support_at_once_and_alerts(
    partner, django_assert_num_queries
):
    assert save(partner, "SAF7", 1, 1).status_code == 204  # "Never": nothing to show
    save(partner, "COM1", 4, 1)  # warm caches
    # 1 session, 2 response, 3 the response's write lock (two safety saves never deadlock), 4 upsert,
    # 5 the safety answers: a calm safety answer changes nothing else.
    with django_assert_num_queries(5):
        assert save(partner, "SAF6", 1, 1).status_code == 204
    # The answer that raises the level, once: 6 the changed level, 7-10 the alert (read, savepoint,
    # insert, release), 11-12 its two outbox rows (the e-mail, the escalation), one upsert each,
    # 13 the couple's caseload row (it puts the couple first).
    with django_assert_num_queries(13):
        reply = save(partner, "SAF5", 4, 1)
    assert reply.status_code == 200
    assert "Support is here if you need it" in page_text(reply)
    assert Response.objects.get(pk=partner.response_id).safety_level == "concern"
    # Leaving the section without "Save and continue" still leaves the counselor alerted, once.
    save(partner, "SAF5", 5, 2)
    assert SafetyAlert.objects.filter(response_id=partner.response_id).count() == 1
    assert Job.objects.filter(kind="safety_alert").count() == 1


def test_the_safety_page_has_a_place_for_support_to_appear(partner):
    page = page_text(partner.get(reverse("assessments:section", args=[partner.response_id, len(section_codes())])))
    assert "data-support-slot" in page


def test_a_save_that_races_a_submit_cannot_land_after_it(partner):
    """The check before the save passed, then the response was submitted: the save itself refuses."""
    from assessments.answering import item_rules, save_answer

    answer_everything(partner, value=4)
    submit(partner)
    rule = item_rules(partner.assignment.instrument_id)["COM1"]
    assert save_answer(response_id=partner.response_id, item_id=rule.id, value=1, seq=50) is False
    assert Answer.objects.get(response_id=partner.response_id, item__code="COM1").value == 4


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="concurrency is proven on PostgreSQL")
def test_saves_racing_a_submit_leave_a_score_that_matches_the_stored_answers(transactional_db, world):
    from assessments import scoring
    from assessments.scores import answers_of

    assignment, tokens = make_assignment(world.couple)
    partner = start(tokens["A"])
    answer_everything(partner, value=4)
    codes = sum(section_codes()[:6], [])[:12]
    barrier = threading.Barrier(len(codes) + 1)
    errors = []

    def act(action):
        browser = Client()
        browser.cookies = copy.deepcopy(partner.cookies)
        try:
            barrier.wait(timeout=20)
            action(browser)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    actions = [lambda b: submit(b, partner.response_id)]
    actions += [lambda b, code=code: save(b, code, 1, 2, partner.response_id) for code in codes]
    threads = [threading.Thread(target=act, args=(a,)) for a in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    response = Response.objects.select_related("assignment__instrument").get(pk=partner.response_id)
    assert response.submitted_at is not None
    instrument = response.assignment.instrument
    expected = scoring.score_response(instrument.item_specs(), answers_of(response), instrument.norms())
    assert Score.objects.get(response=response).domains == expected.domains


def test_a_submission_is_one_transaction_of_few_queries_whatever_the_length_of_the_instrument(
    world, django_assert_num_queries
):
    assignment, _ = make_assignment(world.couple)
    first, second = (assignment.responses.get(partner__position=p) for p in "AB")
    answer(first, finish=False)
    answer(second, finish=False)
    scores.item_specs(assignment.instrument)  # warm the per-process cache of item specs
    first, second = (Response.objects.get(pk=r.pk) for r in (first, second))
    # savepoint; 1 the winning update; 2 the administration (locked) with couple, practice and
    # instrument; 3 both responses; 4 both partners' answers; 5 the safety level; 6 the score
    # upsert; 7-8 the partner's reminders (their jobs, then the reminders); 9 the couple's caseload
    # row (one INSERT … SELECT … ON CONFLICT); release. (5 only when the level changed: answers
    # saved through the pages have stored it already.)
    with django_assert_num_queries(11):
        assert workflows.submit(first)
    # The second partner also: 10 completes the administration, 11 cancels its overdue notice,
    # 12 queues "both finished", 13 queues storing the comparison report; and the one upsert
    # scores both partners, attunement included.
    with django_assert_num_queries(15):
        assert workflows.submit(second)
    both = Score.objects.filter(response__assignment=assignment)
    assert both.count() == 2 and all(s.attunement is not None for s in both)
    assert not workflows.submit(Response.objects.get(pk=second.pk))  # a repeat changes nothing
