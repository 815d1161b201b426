from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assessments.models import SafetyAlert
from practice.models import AuditEvent, audit
from tests.conftest import PASSWORD, client_for, make_assignment, make_couple, page_text
from tests.practice.export_helpers import completed_assignment, read_csv, streamed

pytestmark = pytest.mark.smoke


def test_sign_ins_failed_sign_ins_and_couple_views_appear_in_the_audit_log(world):
    Client().post(reverse("login"), {"username": world.owner.email, "password": PASSWORD})
    Client().post(reverse("login"), {"username": world.owner.email, "password": "wrong password"})
    client_for(world.owner).get(reverse("assessments:couple", args=[world.couple.pk]))
    page = page_text(client_for(world.admin).get(reverse("practice:audit_log")))
    for action in ("auth.sign_in", "auth.sign_in_failed", "couple.view"):
        assert action in page
    assert world.owner.email in page


def test_audit_log_shows_only_the_practices_own_events(world):
    Client().post(reverse("login"), {"username": world.outsider.email, "password": PASSWORD})
    page = page_text(client_for(world.admin).get(reverse("practice:audit_log")))
    assert world.outsider.email not in page


def test_audit_log_filters_by_action_actor_and_date(world):
    audit(None, "couple.view", world.couple, practice=world.practice, actor=world.owner)
    audit(None, "member.role", world.owner, practice=world.practice, actor=world.admin)
    client = client_for(world.admin)
    by_action = page_text(client.get(reverse("practice:audit_log"), {"action": "member.role"}))
    assert "member.role" in by_action and "<code>couple.view</code>" not in by_action
    by_actor = page_text(client.get(reverse("practice:audit_log"), {"actor": world.owner.pk}))
    assert "<code>couple.view</code>" in by_actor and "<code>member.role</code>" not in by_actor
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    future = page_text(client.get(reverse("practice:audit_log"), {"start": tomorrow}))
    assert "No events match" in future


def test_audit_log_pages_through_many_events_with_a_fixed_number_of_queries(world, django_assert_num_queries):
    AuditEvent.objects.bulk_create(
        AuditEvent(practice=world.practice, actor=world.owner, actor_label=world.owner.email, action="couple.view")
        for _ in range(120)
    )
    client = client_for(world.admin)
    # session, user + membership + practice, action choices, actor choices, count, page of events,
    # the names of the one object type on the page (the admin's own sign-in names a user),
    # the audit row of this view, then the session save (savepoint, update, release)
    with django_assert_num_queries(11):
        first = page_text(client.get(reverse("practice:audit_log")))
    assert "Page 1 of 3" in first
    assert "Page 3 of 3" in page_text(client.get(reverse("practice:audit_log"), {"page": 3}))


def test_audit_log_exports_as_csv_and_the_export_is_audited(world):
    completed_assignment(world.couple)
    client_for(world.admin).post(reverse("assessments:exports"), {"kind": "answers", "format": "csv"})
    response = client_for(world.admin).get(reverse("practice:audit_export"), {"action": "export.download"})
    rows = read_csv(streamed(response))
    assert rows[0] == ["at", "actor", "action", "object_type", "object_id", "ip", "detail"]
    assert [r[2] for r in rows[1:]] == ["export.download"]
    assert rows[1][6].startswith("{") and '"kind": "answers"' in rows[1][6]
    assert AuditEvent.objects.filter(action="audit.export", actor=world.admin).count() == 1


def test_audit_events_never_hold_answer_content(world):
    completed_assignment(world.couple)
    admin = client_for(world.admin)
    admin.post(reverse("assessments:exports"), {"kind": "answers", "format": "csv"})
    admin.get(reverse("assessments:couple_record", args=[world.couple.pk]))
    for event in AuditEvent.objects.all():
        assert "value" not in event.detail and "answers" not in event.detail


def test_audit_events_refuse_updates_and_deletes(world):
    event = audit(None, "couple.view", world.couple, practice=world.practice, actor=world.owner)
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action="nothing")
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "couple.view"


@pytest.mark.parametrize("name", ["practice:audit_log", "practice:audit_export"])
def test_counselors_cannot_read_the_audit_log(world, name):
    assert client_for(world.owner).get(reverse(name)).status_code == 403


def test_a_formula_typed_at_sign_in_cannot_run_in_the_auditors_spreadsheet(world):
    AuditEvent.objects.create(
        practice=world.practice, actor_label='=HYPERLINK("http://evil.example")', action="auth.sign_in_failed"
    )
    rows = read_csv(streamed(client_for(world.admin).get(reverse("practice:audit_export"))))
    labels = [r[1] for r in rows[1:] if r[2] == "auth.sign_in_failed"]
    assert labels == ['\'=HYPERLINK("http://evil.example")']


def test_the_log_names_couples_and_partners_and_links_only_the_couples_the_reader_counsels(
    world, django_assert_num_queries
):
    own = make_couple(world.admin, label="Avery & Blake", a=("Avery", "avery@example.com"), b=("Blake", "b@x.example"))
    theirs, _ = make_assignment(world.couple)
    mine, _ = make_assignment(own)
    response = theirs.responses.get(partner__position="A")
    alert = SafetyAlert.objects.create(response=response, level=SafetyAlert.Level.CONCERN)
    events = (
        (world.couple, "couple.view"),
        (own, "couple.view"),
        (theirs, "comparison.view"),
        (mine, "comparison.view"),
        (response, "reminder.remind_now"),
        (world.owner, "member.role"),
        (alert, "safety_alert.acknowledge"),
    )
    for obj, action in events:
        audit(None, action, obj, practice=world.practice, actor=world.owner)
    client = client_for(world.admin)
    client.get(reverse("practice:overview"))  # the session's first write is behind us
    # session, user + membership + practice, action choices, actor choices, count, page of events,
    # one query per object type on the page (couple, assignment, response, user, safety alert),
    # and the audit row of this view
    with django_assert_num_queries(12):
        response_page = client.get(reverse("practice:audit_log"))
    html = response_page.content.decode()
    text = page_text(response_page)
    assert "Taylor & Jordan" in text and "Avery & Blake" in text
    assert "Taylor (Taylor & Jordan)" in text  # the response is named by its partner and couple
    assert "Owner" in text  # the user by their name
    # The admin counsels Avery & Blake: a link to its couple page; Taylor & Jordan is another's.
    own_page = reverse("assessments:couple", args=[own.pk])
    assert html.count(f'href="{own_page}"') == 2  # the couple and its administration
    assert reverse("assessments:couple", args=[world.couple.pk]) not in html
    # Whose the safety alert was is the counselor's to know.
    assert "A safety alert on another counselor&#x27;s couple" in html
    assert client_for(world.admin).get(own_page).status_code == 200

    # A full page of events of the same kinds: the same number of queries.
    for _ in range(7):
        for obj, action in events:
            audit(None, action, obj, practice=world.practice, actor=world.owner)
    with django_assert_num_queries(12):
        assert "Page 1 of 2" in page_text(client.get(reverse("practice:audit_log")))
