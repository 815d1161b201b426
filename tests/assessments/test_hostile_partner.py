"""Safe when one partner is the danger: links the counselor controls, a real quick exit, discreet
messages, results on the counselor's terms, and safety alerts that cannot be missed.

Each test reads as the other partner (who holds this partner's phone and mailbox) or as the
counselor would try it.
"""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from assessments import reminders
from assessments.models import Assignment, Reminder, Response, SafetyAlert
from assessments.workflows import record_safety
from practice.models import AuditEvent, Job, Membership
from tests.assessments.answering_helpers import answer_everything, open_link, section_codes, start
from tests.clients.factories import answer, finished_assignment, partner_client
from tests.conftest import client_for, deliver, make_assignment, make_couple, make_user, page_text

pytestmark = pytest.mark.smoke

# Words a message or a page title a partner can receive must never carry: they would tell whoever
# else reads the mailbox, the browser history or the tab switcher what this is about.
REVEALING = (
    "assessment",
    "connection",
    "relationship",
    "partner",
    "couple",
    "marriage",
    "spouse",
    "safety",
    "abuse",
    "violence",
    "harm",
    "afraid",
    "score",
    "intima",
    "affection",
    "sex",
    "conflict",
    "divorce",
)


def revealing_words(text):
    # Secret link tokens are random letters: one may spell "sex" or "harm" by chance. The words
    # around them (the URL's path included) are still scanned.
    lowered = re.sub(r"[A-Za-z0-9_:-]{20,}", " ", text).lower()
    return [word for word in REVEALING if word in lowered]


def title_of(response):
    return re.search(r"<title>(.*?)</title>", response.content.decode(), re.S).group(1).strip()


def finished_partner(world, *, consent=(True, True), overrides=(None, None)):
    """An administration both partners finished; partner A's browser holds a session on it."""
    assignment, responses, tokens = finished_assignment(world.couple, consent=consent, overrides=overrides)
    return assignment, responses, partner_client(tokens["A"]), tokens


# --- Links under the counselor's control ---------------------------------------------------------


def test_a_submitted_link_opens_only_the_results_and_closes_after_the_practices_window(world):
    assignment, responses, browser, tokens = finished_partner(world)
    a = responses["A"]
    section = reverse("assessments:section", args=[a.pk, len(section_codes())])
    assert browser.get(section)["Location"] == reverse("assessments:results", args=[a.pk])  # never the answers
    assert browser.get(reverse("assessments:review", args=[a.pk]))["Location"].endswith("/results/")
    assert browser.get(reverse("assessments:results", args=[a.pk])).status_code == 200
    # The practice's window after submitting (14 days by default) passes: nothing opens any more.
    Response.objects.filter(pk=a.pk).update(submitted_at=timezone.now() - timedelta(days=15))
    gone = browser.get(reverse("assessments:results", args=[a.pk]))
    assert gone.status_code == 410 and "This link has expired" in page_text(gone)
    assert browser.get(reverse("assessments:results", args=[a.pk])).status_code == 403  # the session ended too
    _, again = open_link(tokens["A"])
    assert again.status_code == 410 and "Every answer you already gave is kept" in page_text(again)


def test_the_counselor_ends_a_partners_access_and_every_session_with_that_link_ends(world):
    assignment, responses, browser, tokens = finished_partner(world)
    a = responses["A"]
    page = page_text(client_for(world.owner).get(reverse("assessments:couple", args=[world.couple.pk])))
    assert "End access" in page
    done = client_for(world.owner).post(reverse("assessments:end_access", args=[a.pk]), follow=True)
    assert "Taylor's link no longer opens anything, on any device" in page_text(done)
    assert browser.get(reverse("assessments:results", args=[a.pk])).status_code == 403
    _, reopened = open_link(tokens["A"])
    assert reopened.status_code == 410 and "This link no longer opens" in page_text(reopened)
    assert AuditEvent.objects.filter(action="response.access_ended", object_id=str(a.pk)).count() == 1
    assert Response.objects.get(pk=a.pk).answers.count() > 0  # every answer kept


@pytest.mark.parametrize("who", ["colleague", "outsider", "admin"])
def test_nobody_but_the_couples_counselor_can_end_a_partners_access(world, who):
    assignment, tokens = make_assignment(world.couple)
    response = assignment.responses.get(partner__position="A")
    assert (
        client_for(getattr(world, who)).post(reverse("assessments:end_access", args=[response.pk])).status_code == 404
    )
    assert response.links.filter(revoked_at__isnull=True).exists()


def test_a_sharing_choice_changes_only_while_the_link_opens_is_audited_and_the_counselor_sees_it(world):
    assignment, responses, browser, _ = finished_partner(world)
    a = responses["A"]
    client_for(world.owner).post(reverse("assessments:release", args=[world.couple.pk, assignment.pk]))
    summary = reverse("assessments:shared_summary", args=[a.pk])
    assert browser.get(summary).status_code == 200
    # Taylor changes their mind after the summary was shared: it is hidden from both at once.
    browser.post(reverse("assessments:consent", args=[a.pk]), {"understood": "on", "share_summary": "no"})
    assert browser.get(summary).status_code == 404
    jordan = partner_client(assignment.responses.get(partner__position="B").live_token())
    assert jordan.get(reverse("assessments:shared_summary", args=[responses["B"].pk])).status_code == 404
    page = page_text(
        client_for(world.owner).get(reverse("assessments:comparison", args=[world.couple.pk, assignment.pk]))
    )
    assert "Taylor changed their choice about sharing" in page and "no longer agree" in page
    assert AuditEvent.objects.filter(action="response.sharing_changed", object_id=str(a.pk)).count() == 1


# --- A real quick exit ---------------------------------------------------------------------------


def test_quick_exit_ends_the_session_on_the_server_and_lands_on_the_practices_neutral_site(world):
    world.practice.quick_exit_url = "https://news.example/"
    world.practice.save()
    assignment, tokens = make_assignment(world.couple)
    browser = start(tokens["A"])
    section = reverse("assessments:section", args=[browser.response_id, 1])
    assert 'data-exit="quick"' in browser.get(section).content.decode()
    left = browser.post(reverse("assessments:exit"), {"how": "quick"})
    assert left.status_code == 302 and left["Location"] == "https://news.example/"
    for url in (section, reverse("assessments:review", args=[browser.response_id])):
        after = browser.get(url)
        assert after.status_code == 403 and "Taylor" not in page_text(after)
    assert AuditEvent.objects.filter(action="response.visit_ended").count() == 1


def test_quick_exit_works_without_a_session_or_a_csrf_token_and_finish_for_now_shows_nothing(world):
    strict = Client(enforce_csrf_checks=True)
    left = strict.post(reverse("assessments:exit"), {"how": "quick"})
    assert left.status_code == 302 and left["Location"] == settings.DEFAULT_QUICK_EXIT_URL
    assignment, tokens = make_assignment(world.couple)
    browser = start(tokens["B"])
    finished = browser.post(reverse("assessments:exit"), {"how": "finish"}, follow=True)
    assert "You have finished for now" in page_text(finished) and "Jordan" not in page_text(finished)
    assert browser.get(reverse("assessments:welcome", args=[browser.response_id])).status_code == 403


def test_a_partner_session_idles_out_after_thirty_minutes(world):
    assignment, tokens = make_assignment(world.couple)
    browser = start(tokens["A"])
    browser.get(reverse("assessments:section", args=[browser.response_id, 1]))
    assert settings.PARTNER_SESSION_IDLE_SECONDS == 30 * 60
    assert browser.session.get_expiry_age() == 30 * 60


# --- Discreet by default -------------------------------------------------------------------------


def test_no_message_a_partner_can_receive_names_what_it_is_about(world):
    world.couple.label = "Taylor & Jordan"
    assignment, responses, browser, tokens = finished_partner(world)
    open_one, _ = make_assignment(
        make_couple(world.owner, "Sam & Alex", ("Sam", "s@x.example"), ("Alex", "a@x.example"))
    )
    for kind in Reminder.Kind.values:
        reminder = Reminder.objects.filter(response__assignment=open_one).first()
        Reminder.objects.filter(response=reminder.response, kind=kind).exclude(pk=reminder.pk).delete()
        Reminder.objects.filter(pk=reminder.pk).update(kind=kind, status=Reminder.Status.SCHEDULED, job=None)
        reminder.refresh_from_db()
        reminders.queue(reminder)
        deliver()
    client_for(world.owner).post(reverse("assessments:release", args=[world.couple.pk, assignment.pk]))
    deliver()
    partner_mail = [m for m in mail.outbox if m.to[0] not in {world.owner.email}]
    assert {m.to[0] for m in partner_mail} >= {"s@x.example", "taylor@example.com", "jordan@example.com"}
    for message in partner_mail:
        whole = " ".join([message.subject, message.from_email, message.body, message.alternatives[0][0]])
        assert revealing_words(whole) == [], (message.subject, revealing_words(whole))
        assert "Riverside Counseling" in message.from_email


def test_every_partner_page_title_is_neutral(world):
    assignment, tokens = make_assignment(world.couple)
    browser = start(tokens["A"])
    rid = browser.response_id
    urls = [reverse("assessments:section", args=[rid, i + 1]) for i in range(len(section_codes()))]
    urls += [reverse(name, args=[rid]) for name in ("assessments:welcome", "assessments:consent", "assessments:review")]
    answer_everything(browser, safety=3)
    urls.append(reverse("assessments:support", args=[rid]))
    titles = [title_of(browser.get(url)) for url in urls]
    browser.post(reverse("assessments:submit", args=[rid]))
    titles.append(title_of(browser.get(reverse("assessments:results", args=[rid]))))
    titles.append(title_of(browser.get(reverse("assessments:shared_summary", args=[rid]))))
    titles.append(title_of(Client().get(reverse("assessments:open_link", args=["no-such-link"]))))
    token = reminders.unsubscribe_token(world.couple.partners.get(position="A"))
    titles.append(title_of(Client().get(reverse("assessments:unsubscribe", args=[token]))))
    titles.append(title_of(Client().get(reverse("assessments:finished"))))
    for title in titles:
        assert revealing_words(title) == [], title


# --- Who sees results, and when ------------------------------------------------------------------


def test_results_wait_for_the_feedback_session_when_the_practice_says_so(world):
    world.practice.results_visibility = "after_release"
    world.practice.save()
    assignment, responses, browser, _ = finished_partner(world)
    a = responses["A"]
    waiting = page_text(browser.get(reverse("assessments:results", args=[a.pk])))
    assert "Your counselor will go through what they show with you" in waiting
    assert "out of 100" not in waiting
    counselor = client_for(world.owner)
    url = reverse("assessments:comparison", args=[world.couple.pk, assignment.pk])
    assert "Let each partner see their own results" in page_text(counselor.get(url))
    counselor.post(reverse("assessments:share_results", args=[world.couple.pk, assignment.pk]))
    assert "out of 100" in page_text(browser.get(reverse("assessments:results", args=[a.pk])))
    assert Job.objects.filter(kind="partner_notice").count() == 2  # each partner is told, discreetly
    assert AuditEvent.objects.filter(action="response.results_shared").count() == 1


def test_a_shared_summary_is_linked_from_each_partners_results_and_each_is_told(world):
    assignment, responses, browser, _ = finished_partner(world)
    results = reverse("assessments:results", args=[responses["A"].pk])
    summary = reverse("assessments:shared_summary", args=[responses["A"].pk])
    assert summary not in browser.get(results).content.decode()
    client_for(world.owner).post(reverse("assessments:release", args=[world.couple.pk, assignment.pk]))
    assert summary in browser.get(results).content.decode()
    deliver()
    told = [m for m in mail.outbox if m.subject == "Something new from Riverside Counseling"]
    assert sorted(m.to[0] for m in told) == ["jordan@example.com", "taylor@example.com"]
    assert all("/a/" in m.body for m in told)


def test_releasing_with_an_unseen_alert_asks_for_a_confirmation_that_names_the_risk(world):
    assignment, responses, browser, _ = finished_partner(world, overrides=(None, {"S3": 3}))
    counselor = client_for(world.owner)
    url = reverse("assessments:release", args=[world.couple.pk, assignment.pk])
    asked = counselor.post(url)
    assert asked.status_code == 409
    text = page_text(asked)
    assert "A safety alert on this couple is not marked as seen" in text and "urgent" in text
    assert Assignment.objects.get(pk=assignment.pk).released_at is None  # nothing changed
    counselor.post(url, {"confirm_risk": "on"})
    assert Assignment.objects.get(pk=assignment.pk).released_at is not None
    event = AuditEvent.objects.get(action="comparison.release")
    assert event.detail["open_alerts"] == 1
    counselor.post(reverse("assessments:withdraw", args=[world.couple.pk, assignment.pk]))
    assert Assignment.objects.get(pk=assignment.pk).released_at is None
    assert browser.get(reverse("assessments:shared_summary", args=[responses["A"].pk])).status_code == 404
    assert AuditEvent.objects.filter(action="comparison.withdraw").count() == 1


# --- Safety alerts that cannot be missed ---------------------------------------------------------


def test_the_counselor_acknowledges_an_alert_and_only_their_own(world):
    assignment, responses, _, _ = finished_partner(world, overrides=(None, {"S1": 2}))
    alert = SafetyAlert.objects.get(response=responses["B"])
    url = reverse("assessments:acknowledge_alert", args=[alert.pk])
    for who in ("colleague", "admin", "outsider"):
        assert client_for(getattr(world, who)).post(url).status_code == 404
    page = page_text(
        client_for(world.owner).get(reverse("assessments:comparison", args=[world.couple.pk, assignment.pk]))
    )
    assert "Mark as seen" in page
    client_for(world.owner).post(url)
    alert.refresh_from_db()
    assert alert.acknowledged_at is not None and alert.acknowledged_by == world.owner
    assert AuditEvent.objects.filter(action="safety_alert.acknowledge", object_id=str(alert.pk)).count() == 1


def test_an_alert_raised_while_answering_is_on_the_comparison_before_both_finish(world):
    assignment, tokens = make_assignment(world.couple)
    browser = start(tokens["B"])
    browser.post(reverse("assessments:save_answer", args=[browser.response_id]), {"item": "SAF2", "value": 4, "seq": 1})
    alert = SafetyAlert.objects.get(response_id=browser.response_id)
    page = page_text(
        client_for(world.owner).get(reverse("assessments:comparison", args=[world.couple.pk, assignment.pk]))
    )
    assert "The comparison is not ready yet" in page and "Jordan: Urgent" in page and f'id="alert-{alert.pk}"' in page


def test_a_couple_with_an_unseen_alert_comes_first_under_every_sort_and_filter(world):
    for i in range(3):
        other = make_couple(world.owner, f"Aaron {i}", (f"A{i}", f"a{i}@x.example"), (f"B{i}", f"b{i}@x.example"))
        make_assignment(other, days=1 + i)
    alerted = make_couple(world.owner, "Zed & Yan", ("Zed", "z@x.example"), ("Yan", "y@x.example"))
    assignment, _ = make_assignment(alerted, days=30)
    answer(assignment.responses.get(partner__position="A"), overrides={"S3": 2}, finish=False)
    record_safety(assignment.responses.get(partner__position="A"))
    client = client_for(world.owner)
    for query in ("", "?sort=activity", "?sort=index", "?status=finished", "?status=overdue", "?status=waiting"):
        page = page_text(client.get(reverse("assessments:caseload") + query))
        assert "Zed &amp; Yan" in page or "Zed & Yan" in page, query
        first = re.search(r"(Zed & Yan|Aaron \d|Taylor & Jordan)", page).group(1)
        assert first == "Zed & Yan", query
    header = page_text(client.get(reverse("assessments:caseload")))
    assert "1 safety alert waiting" in header
    client.post(reverse("assessments:acknowledge_alert", args=[SafetyAlert.objects.get().pk]))
    page = page_text(client.get(reverse("assessments:caseload") + "?sort=index"))
    assert "safety alert waiting" not in page
    assert "Zed & Yan" not in page_text(client.get(reverse("assessments:caseload") + "?status=finished"))


def test_the_waiting_alerts_badge_costs_no_query_of_its_own(world):
    client = client_for(world.owner)
    url = reverse("assessments:caseload")
    finished_partner(world)
    client.get(url)
    with CaptureQueriesContext(connection) as calm:
        client.get(url)
    SafetyAlert.objects.create(response=Response.objects.filter(partner__position="B").get(), level="concern")
    with CaptureQueriesContext(connection) as alerted:
        page = page_text(client.get(url))
    # The count is a subquery of the one query that loads the signed-in user (practice/auth.py).
    assert "1 safety alert waiting" in page
    assert len(alerted) == len(calm)


def test_an_unseen_alert_reaches_the_admins_once_after_the_practices_time_and_says_nothing_more(world):
    second_admin = make_user(world.practice, "second-admin@riverside.example", Membership.Role.ADMIN)
    assignment, responses, _, _ = finished_partner(world, overrides=({"S4": 2}, None))
    raised = SafetyAlert.objects.get().raised_at  # the factory submits an hour after assigning
    deliver(now=raised)  # the counselor's e-mail goes at once
    counselor_mail = [m for m in mail.outbox if m.to == [world.owner.email] and "attention" in m.subject]
    assert len(counselor_mail) == 1
    mail.outbox.clear()
    deliver(now=raised + timedelta(hours=world.practice.alert_escalation_hours - 1))
    assert not mail.outbox  # not yet
    later = raised + timedelta(hours=world.practice.alert_escalation_hours, minutes=1)
    deliver(now=later)
    deliver(now=later + timedelta(hours=1))
    told = sorted(m.to[0] for m in mail.outbox)
    assert told == sorted([world.admin.email, second_admin.email])
    for message in mail.outbox:
        assert "Taylor" not in message.body and "Jordan" not in message.body and "urgent" not in message.body.lower()
    assert SafetyAlert.objects.get().escalated_at is not None


def test_an_alert_acknowledged_in_time_does_not_escalate(world):
    finished_partner(world, overrides=({"S4": 2}, None))
    client_for(world.owner).post(reverse("assessments:acknowledge_alert", args=[SafetyAlert.objects.get().pk]))
    mail.outbox.clear()
    deliver(now=timezone.now() + timedelta(days=2))
    assert not [m for m in mail.outbox if "waiting for a counselor" in m.subject]


# --- Counselor-only means counselor-only ---------------------------------------------------------


def test_the_counselors_notes_reach_nobody_else(world):
    world.couple.notes = "Private working hypothesis"
    world.couple.save()
    record = client_for(world.admin).get(reverse("assessments:couple_record", args=[world.couple.pk]))
    assert record.status_code == 200 and "Private working hypothesis" not in record.content.decode()
    operator = make_user(None, "operator@example.com")
    operator.is_staff = operator.is_superuser = True
    operator.save()
    change = client_for(operator).get(reverse("admin:clients_couple_change", args=[world.couple.pk]))
    assert change.status_code == 200 and "Private working hypothesis" not in change.content.decode()
