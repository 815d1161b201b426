import json

import pytest
from django.urls import reverse

from assessments.models import Answer, Response
from clients.models import Couple, Partner
from practice.models import AuditEvent
from tests.conftest import client_for, make_couple, page_text
from tests.practice.export_helpers import completed_assignment

pytestmark = pytest.mark.smoke


@pytest.fixture
def answered(world):
    completed_assignment(world.couple)
    return world


def test_couples_page_lists_the_practices_couples_with_counselors_and_no_answers(answered, django_assert_num_queries):
    make_couple(answered.colleague, label="Lee & Kim")
    make_couple(answered.outsider, label="Elsewhere couple")
    client = client_for(answered.admin)
    # session, user + membership + practice, couples with counselor and assessment count,
    # then the session save (savepoint, update, release)
    with django_assert_num_queries(6):
        page = page_text(client.get(reverse("clients:practice_couples")))
    assert "Taylor & Jordan" in page and "Lee & Kim" in page and "Elsewhere couple" not in page
    assert "taylor@example.com" not in page


def test_admin_downloads_a_couples_full_record_without_safety_answers(answered):
    response = client_for(answered.admin).get(reverse("assessments:couple_record", args=[answered.couple.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="couple-{answered.couple.pk}-record.json"'
    record = json.loads(response.content)
    assert [p["email"] for p in record["partners"]] == ["taylor@example.com", "jordan@example.com"]
    answers = record["assignments"][0]["responses"][0]["answers"]
    codes = {a["item_id"] for a in answers}
    assert "COM1" in codes and not any(code.startswith("SAF") for code in codes)
    assert record["safety_answers_included"] is False
    assert record["assignments"][0]["responses"][0]["scores"]["connection_index"] == 75.0
    event = AuditEvent.objects.get(action="couple.export")
    assert event.object_id == str(answered.couple.pk) and event.actor == answered.admin


def test_an_admin_who_is_also_the_counselor_gets_the_safety_answers_too(world):
    couple = make_couple(world.admin, label="Admin's own couple")
    completed_assignment(couple)
    record = json.loads(client_for(world.admin).get(reverse("assessments:couple_record", args=[couple.pk])).content)
    codes = {a["item_id"] for a in record["assignments"][0]["responses"][0]["answers"]}
    assert "SAF1" in codes and record["safety_answers_included"] is True


def test_deleting_a_couple_needs_its_name_typed_and_keeps_everything_otherwise(answered):
    url = reverse("clients:couple_delete", args=[answered.couple.pk])
    response = client_for(answered.admin).post(url, {"confirm": "taylor"})
    assert response.status_code == 200
    assert "exactly to delete this couple" in page_text(response)
    assert Couple.objects.filter(pk=answered.couple.pk).exists()


def test_admin_deletes_a_couple_with_everything_they_answered_and_the_deletion_is_audited(answered):
    pk = answered.couple.pk
    response = client_for(answered.admin).post(
        reverse("clients:couple_delete", args=[pk]), {"confirm": "Taylor & Jordan"}
    )
    assert response.status_code == 302
    assert not Couple.objects.filter(pk=pk).exists()
    assert not Partner.objects.filter(couple_id=pk).exists()
    assert not Response.objects.exists() and not Answer.objects.exists()
    event = AuditEvent.objects.get(action="couple.delete")
    assert (event.object_type, event.object_id, event.actor) == ("couple", str(pk), answered.admin)
    assert "Taylor" not in json.dumps(event.detail)


@pytest.mark.parametrize("who, status", [("owner", 403), ("colleague", 403), ("outsider_admin", 404)])
def test_only_the_practices_admin_can_export_or_delete_a_couple(answered, who, status):
    client = client_for(getattr(answered, who))
    assert client.get(reverse("assessments:couple_record", args=[answered.couple.pk])).status_code == status
    response = client.post(reverse("clients:couple_delete", args=[answered.couple.pk]), {"confirm": "Taylor & Jordan"})
    assert response.status_code == status
    assert Couple.objects.filter(pk=answered.couple.pk).exists()
