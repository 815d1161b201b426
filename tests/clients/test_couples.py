import pytest
from django.urls import reverse

from clients.models import Couple
from practice.models import AuditEvent
from tests.conftest import client_for

pytestmark = pytest.mark.smoke


def test_owner_sees_their_couple_in_the_caseload(world):
    page = client_for(world.owner).get(reverse("assessments:caseload")).content.decode()
    assert "Taylor &amp; Jordan" in page


@pytest.mark.parametrize("who", ["colleague", "outsider"])
def test_others_do_not_see_the_couple_in_their_caseload(world, who):
    page = client_for(getattr(world, who)).get(reverse("assessments:caseload")).content.decode()
    assert "Taylor &amp; Jordan" not in page


def test_owner_opens_the_couple_page_and_it_is_audited(world):
    url = reverse("assessments:couple", args=[world.couple.pk])
    response = client_for(world.owner).get(url)
    assert response.status_code == 200
    assert "taylor@example.com" in response.content.decode()
    event = AuditEvent.objects.get(action="couple.view")
    assert (event.actor, event.object_id, event.practice) == (world.owner, str(world.couple.pk), world.practice)


@pytest.mark.parametrize("who", ["colleague", "admin", "outsider", "outsider_admin"])
def test_couple_page_is_a_404_for_everyone_but_its_counselor(world, who):
    url = reverse("assessments:couple", args=[world.couple.pk])
    assert client_for(getattr(world, who)).get(url).status_code == 404
    assert not AuditEvent.objects.filter(action="couple.view").exists()


def test_counselor_adds_a_couple_to_their_own_caseload(world):
    data = {
        "label": "Sam & Alex",
        "a_first_name": "Sam",
        "a_email": "sam@example.com",
        "b_first_name": "Alex",
        "b_email": "alex@example.com",
    }
    response = client_for(world.colleague).post(reverse("clients:couple_create"), data)
    couple = Couple.objects.get(label="Sam & Alex")
    assert response["Location"] == reverse("assessments:couple", args=[couple.pk])
    assert (couple.counselor, couple.practice) == (world.colleague, world.practice)
    assert [p.first_name for p in couple.partners.all()] == ["Sam", "Alex"]


def test_adding_a_couple_with_one_shared_email_is_refused_with_a_reason(world):
    data = {
        "label": "Sam & Alex",
        "a_first_name": "Sam",
        "a_email": "same@example.com",
        "b_first_name": "Alex",
        "b_email": "SAME@example.com",
    }
    response = client_for(world.owner).post(reverse("clients:couple_create"), data)
    assert response.status_code == 200
    assert "Each partner needs their own e-mail address" in response.content.decode()
    assert not Couple.objects.filter(label="Sam & Alex").exists()


def test_user_without_a_practice_cannot_add_couples(db):
    from tests.conftest import make_user

    loner = make_user(None, "loner@example.com")
    assert client_for(loner).get(reverse("clients:couple_create")).status_code == 403


def test_the_add_couple_form_names_its_fields_marks_the_optional_ones_and_offers_a_way_back(world):
    html = client_for(world.owner).get(reverse("clients:couple_create")).content.decode()
    assert ">Name for this couple<" in html and ">Label<" not in html
    # The two last names, display names, pronouns and languages (the practice's default if left).
    assert html.count('<span class="optional">(optional)</span>') == 8
    assert f'href="{reverse("assessments:caseload")}">Cancel</a>' in html


def test_an_empty_add_couple_form_says_once_what_is_missing_and_saves_nothing(world):
    response = client_for(world.owner).post(reverse("clients:couple_create"), {"a_email": "not-an-address"})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('id="error-summary"') == 1
    assert "The couple was not saved." in html and "these 5 fields" in html
    for message in (
        "Write a name for this couple.",
        "Write partner A&#x27;s first name.",
        "Write partner A&#x27;s e-mail address as name@example.com.",
        "Write partner B&#x27;s first name.",
        "Write partner B&#x27;s e-mail address.",
    ):
        assert message in html, message
    assert "This field is required" not in html
    assert Couple.objects.count() == 1  # only the world's own couple
