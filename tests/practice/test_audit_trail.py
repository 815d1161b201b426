"""The audit trail holds: nobody writes it through a page, every view of practice data is in it,
and each row carries the client's address as the trusted proxy saw it."""

import pytest
from django.test import Client
from django.urls import reverse

from practice.models import AuditEvent, User
from tests.conftest import PASSWORD, client_for, page_text

CLIENT_IP = "198.51.100.23"


@pytest.fixture
def operator(db, settings):
    settings.OPERATORS_REQUIRE_TWO_FACTOR = False
    return User.objects.create_superuser("ops@example.org", PASSWORD)


@pytest.fixture
def event(world):
    return AuditEvent.objects.create(practice=world.practice, actor=world.owner, action="couple.view", ip="192.0.2.1")


def test_the_django_admin_offers_a_superuser_no_way_to_add_an_audit_row(operator, world):
    client = client_for(operator)
    listing = client.get(reverse("admin:practice_auditevent_changelist"))
    assert listing.status_code == 200
    assert reverse("admin:practice_auditevent_add") not in page_text(listing)
    assert client.get(reverse("admin:practice_auditevent_add")).status_code == 403
    forged = {"action": "couple.view", "actor_label": "someone@else.example", "ip": "192.0.2.99", "detail": "{}"}
    assert client.post(reverse("admin:practice_auditevent_add"), forged).status_code == 403
    assert not AuditEvent.objects.filter(actor_label="someone@else.example").exists()


def test_the_django_admin_cannot_change_or_delete_an_audit_row(operator, event):
    client = client_for(operator)
    change = reverse("admin:practice_auditevent_change", args=[event.pk])
    page = client.get(change)
    assert page.status_code == 200 and "Save" not in page_text(page).split("<main", 1)[-1].split("</form>")[0]
    client.post(change, {"action": "forged", "actor_label": "x", "ip": "192.0.2.99", "detail": "{}"})
    assert client.get(reverse("admin:practice_auditevent_delete", args=[event.pk])).status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    client.post(reverse("admin:practice_auditevent_changelist"), bulk)
    event.refresh_from_db()
    assert event.action == "couple.view" and event.ip == "192.0.2.1"


def audited(action):
    return list(AuditEvent.objects.filter(action=action))


def test_each_caseload_view_and_each_htmx_update_writes_one_audit_row(world):
    client = client_for(world.owner)
    client.get(reverse("assessments:caseload"))
    (plain,) = audited("caseload.view")
    assert plain.actor == world.owner and plain.practice == world.practice and plain.detail["htmx"] is False
    client.get(reverse("assessments:caseload"), {"q": "Taylor", "status": "attention"}, headers={"HX-Request": "true"})
    first, update = audited("caseload.view")[1], audited("caseload.view")[0]
    assert first == plain and update.detail["htmx"] is True and update.detail["status"] == "attention"
    # Whom the counselor searched for is not kept: it may be a client's name.
    assert update.detail["searched"] is True and "Taylor" not in str(update.detail)


def test_each_statistics_view_writes_one_audit_row_with_its_period(world):
    client_for(world.admin).get(reverse("assessments:statistics"), {"start": "2026-01-01", "end": "2026-03-31"})
    (row,) = audited("statistics.view")
    assert row.actor == world.admin and row.detail == {"start": "2026-01-01", "end": "2026-03-31"}


def test_reading_the_audit_log_is_recorded_and_shows_on_the_next_view(world):
    client = client_for(world.admin)
    first = page_text(client.get(reverse("practice:audit_log")))
    assert "audit.view" not in first
    (row,) = audited("audit.view")
    assert row.actor == world.admin and row.practice == world.practice
    assert "audit.view" in page_text(client.get(reverse("practice:audit_log")))
    assert len(audited("audit.view")) == 2


@pytest.mark.parametrize(
    ("url", "who"),
    [("assessments:caseload", "owner"), ("assessments:statistics", "admin"), ("practice:audit_log", "admin")],
)
def test_audit_rows_keep_the_clients_address_behind_the_trusted_proxy(world, settings, url, who):
    settings.DEBUG = False
    settings.TRUSTED_PROXIES = 1
    client = client_for(getattr(world, who))
    # The client wrote a hop of its own on the left; the proxy (10.0.0.2) appended the real one.
    client.get(reverse(url), REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"203.0.113.66, {CLIENT_IP}")
    (row,) = AuditEvent.objects.exclude(action__startswith="auth.")
    assert row.ip == CLIENT_IP


def test_sign_in_and_failed_sign_in_rows_keep_the_clients_address_behind_the_proxy(world, settings):
    settings.DEBUG = False
    settings.TRUSTED_PROXIES = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": CLIENT_IP}
    Client(**proxy).post(reverse("login"), {"username": world.owner.email, "password": "wrong"})
    Client(**proxy).post(reverse("login"), {"username": world.owner.email, "password": PASSWORD})
    assert {e.action: e.ip for e in AuditEvent.objects.all()} == {
        "auth.sign_in_failed": CLIENT_IP,
        "auth.sign_in": CLIENT_IP,
    }


def test_a_trusted_hop_that_is_not_an_address_is_not_stored_as_one(world, settings):
    settings.TRUSTED_PROXIES = 1
    client = client_for(world.owner)
    response = client.get(reverse("assessments:caseload"), REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="not-an-ip")
    assert response.status_code == 200
    assert audited("caseload.view")[0].ip == "10.0.0.2"
