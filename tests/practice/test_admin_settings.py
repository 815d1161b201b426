import pytest
from django.urls import reverse

from practice.models import AuditEvent, Practice
from tests.conftest import client_for, page_text

pytestmark = pytest.mark.smoke

VALID = {
    "name": "Riverside Couples Clinic",
    "time_zone": "Europe/Berlin",
    "default_due_days": "10",
    "link_grace_days": "7",
    "reminder_after_days": "3, 6",
    "reminder_before_due_days": "2",
    "reminder_overdue_notice": "",
    "quiet_hours_start": "22:00",
    "quiet_hours_end": "07:30",
    "require_two_factor": "on",
    "closed_link_days": "14",
    "results_visibility": "at_once",
    "quick_exit_url": "https://www.bbc.co.uk/weather",
    "alert_escalation_hours": "24",
    "emergency_number": "112",
    "support_line_text": "Hilfetelefon, rund um die Uhr",
    "support_line_numbers": "+49 116 016 ,08000 116 016",
}


def save(user, **changes):
    return client_for(user).post(reverse("practice:settings"), {**VALID, **changes})


def test_admin_changes_the_practice_settings_and_it_is_audited(world):
    assert save(world.admin).status_code == 302
    practice = Practice.objects.get(pk=world.practice.pk)
    assert (practice.name, practice.time_zone, practice.default_due_days) == (
        "Riverside Couples Clinic",
        "Europe/Berlin",
        10,
    )
    assert practice.reminder_policy == {"after_days": [3, 6], "before_due_days": 2, "overdue_notice": False}
    assert practice.require_two_factor and practice.quiet_hours_end.strftime("%H:%M") == "07:30"
    assert practice.support_numbers == [("+49 116 016", "+49116016"), ("08000 116 016", "08000116016")]
    assert practice.emergency_tel == "112"
    event = AuditEvent.objects.get(action="practice.settings")
    assert "time_zone" in event.detail["changed"] and event.actor == world.admin


def test_settings_page_shows_the_current_reminder_policy(world):
    page = page_text(client_for(world.admin).get(reverse("practice:settings")))
    assert 'value="2, 5"' in page


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("time_zone", "Mars/Olympus", "Select a valid choice"),
        ("reminder_after_days", "2, soon", "Write whole numbers of days"),
        ("reminder_after_days", "1, 2, 3", "Choose at most two reminders after the invitation"),
        ("default_due_days", "0", "Choose a number from 1 to 90"),
        ("quiet_hours_start", "25:00", "Enter a valid time"),
        ("support_line_numbers", "116 016, ask your counselor", "“ask your counselor” is not a phone number"),
        ("emergency_number", "police", "Write the number itself"),
    ],
)
def test_bad_settings_get_a_message_and_change_nothing(world, field, value, message):
    response = save(world.admin, **{field: value})
    assert response.status_code == 200
    assert message in page_text(response)
    assert Practice.objects.get(pk=world.practice.pk).name == "Riverside Counseling"


def test_counselor_cannot_change_settings(world):
    assert save(world.owner).status_code == 403
    assert Practice.objects.get(pk=world.practice.pk).name == "Riverside Counseling"


def test_outsider_admin_changes_only_their_own_practice(world):
    save(world.outsider_admin)
    assert Practice.objects.get(pk=world.practice.pk).name == "Riverside Counseling"
    assert Practice.objects.get(pk=world.other_practice.pk).name == "Riverside Couples Clinic"
