"""Counselors: invite, deactivate, transfer couples, change roles; three parties on every view."""

import re
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from clients.models import Couple
from practice.models import AuditEvent, Invitation, Membership, User
from tests.conftest import PASSWORD, client_for, deliver, make_couple, make_user, page_text

pytestmark = pytest.mark.smoke

NEW_PASSWORD = "a long and unusual passphrase"


def invite(admin, email="newcomer@riverside.example", role="counselor"):
    """The admin invites someone; the worker then sends the e-mail (an outbox row until then)."""
    response = client_for(admin).post(reverse("practice:invite"), {"email": email, "role": role})
    deliver()
    return response


def link_path(mail):
    return re.search(r"http://[^/\s]+(/practice/invitation/\S+/)", mail.body).group(1)


def membership(user):
    return Membership.objects.get(user=user)


# --- Invitations ---------------------------------------------------------------------------


def test_admin_invites_a_counselor_who_sets_a_password_and_is_signed_in(world, mailoutbox):
    response = invite(world.admin)
    assert response.status_code == 302
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["newcomer@riverside.example"]
    assert "72 hours" in mailoutbox[0].body
    client = Client()
    path = link_path(mailoutbox[0])
    assert "newcomer@riverside.example" in page_text(client.get(path))
    done = client.post(path, {"full_name": "Nia Newcomer", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert done.status_code == 302
    user = User.objects.get(email="newcomer@riverside.example")
    assert user.full_name == "Nia Newcomer" and user.check_password(NEW_PASSWORD)
    assert user.membership.practice == world.practice and user.membership.role == "counselor"
    assert client.get(reverse("assessments:caseload")).status_code == 200
    assert AuditEvent.objects.filter(action="member.invite", actor=world.admin).exists()
    assert AuditEvent.objects.filter(action="member.join", actor=user).exists()


def test_invitation_link_works_only_once(world, mailoutbox):
    invite(world.admin)
    path = link_path(mailoutbox[0])
    Client().post(path, {"full_name": "Nia", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    again = Client().get(path)
    assert again.status_code == 410
    assert "already been used" in page_text(again)


def test_expired_invitation_shows_a_clear_page(world, mailoutbox):
    invite(world.admin)
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    response = Client().post(
        link_path(mailoutbox[0]), {"full_name": "Nia", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert response.status_code == 410
    assert "expired" in page_text(response)
    assert not User.objects.filter(email="newcomer@riverside.example").exists()


def test_invitation_expires_after_72_hours(world, mailoutbox):
    invite(world.admin)
    invitation = Invitation.objects.get()
    assert abs((invitation.expires_at - invitation.created_at) - timedelta(hours=72)) < timedelta(seconds=1)


def test_weak_password_is_refused_with_a_message_and_the_link_still_works(world, mailoutbox):
    invite(world.admin)
    path = link_path(mailoutbox[0])
    response = Client().post(path, {"full_name": "Nia", "password1": "12345", "password2": "12345"})
    assert response.status_code == 200
    assert "too short" in page_text(response)
    assert Invitation.objects.get().accepted_at is None


def test_tampered_invitation_token_is_not_valid(world):
    response = Client().get(reverse("practice:invitation_accept", args=["not-a-real-token"]))
    assert response.status_code == 410
    assert "not valid" in page_text(response)


def test_inviting_an_existing_account_is_refused_with_a_form_error(world, mailoutbox):
    response = invite(world.admin, email=world.outsider.email)
    assert response.status_code == 200
    assert "already exists" in page_text(response)
    assert mailoutbox == []


def test_a_new_invitation_replaces_the_earlier_link(world, mailoutbox):
    invite(world.admin)
    invite(world.admin)
    assert Client().get(link_path(mailoutbox[0])).status_code == 410
    assert Client().get(link_path(mailoutbox[1])).status_code == 200


def test_an_invitation_replaced_before_it_was_mailed_is_never_sent(world, mailoutbox):
    client_for(world.admin).post(
        reverse("practice:invite"), {"email": "newcomer@riverside.example", "role": "counselor"}
    )
    invite(world.admin)  # the second one replaces the first before any worker ran
    (mail,) = mailoutbox
    assert Client().get(link_path(mail)).status_code == 200


@pytest.mark.parametrize("who", ["owner", "colleague"])
def test_counselors_cannot_invite(world, who, mailoutbox):
    assert invite(getattr(world, who)).status_code == 403
    assert mailoutbox == []


def test_outsider_admin_cannot_withdraw_an_invitation_of_another_practice(world, mailoutbox):
    invite(world.admin)
    invitation = Invitation.objects.get()
    response = client_for(world.outsider_admin).post(reverse("practice:invitation_revoke", args=[invitation.pk]))
    assert response.status_code == 404
    assert Invitation.objects.get().revoked_at is None


# --- Deactivation ------------------------------------------------------------------------------


def deactivate(admin, user):
    return client_for(admin).post(reverse("practice:member_deactivate", args=[membership(user).pk]))


def test_deactivated_counselors_open_session_is_refused_at_its_next_request(world):
    counselor = Client()
    assert counselor.post(reverse("login"), {"username": world.owner.email, "password": PASSWORD}).status_code == 302
    assert counselor.get(reverse("assessments:caseload")).status_code == 200
    assert deactivate(world.admin, world.owner).status_code == 302
    refused = counselor.get(reverse("assessments:caseload"))
    assert refused.status_code == 302 and refused["Location"].startswith(reverse("login"))
    assert Couple.objects.get(pk=world.couple.pk).counselor == world.owner  # the couple stays until transferred
    event = AuditEvent.objects.get(action="member.deactivate")
    assert (event.actor, event.object_id) == (world.admin, str(world.owner.pk))


def test_deactivation_deletes_the_stored_sessions_and_the_person_cannot_sign_in_again(world):
    client_for(world.owner)
    assert any(s.get_decoded().get("_auth_user_id") == str(world.owner.pk) for s in Session.objects.all())
    deactivate(world.admin, world.owner)
    assert not any(s.get_decoded().get("_auth_user_id") == str(world.owner.pk) for s in Session.objects.all())
    again = Client().post(reverse("login"), {"username": world.owner.email, "password": PASSWORD})
    assert again.status_code == 200


def test_admin_cannot_deactivate_themselves(world):
    response = client_for(world.admin).post(
        reverse("practice:member_deactivate", args=[membership(world.admin).pk]), follow=True
    )
    assert "You cannot deactivate yourself" in page_text(response)
    assert User.objects.get(pk=world.admin.pk).is_active


def test_the_last_active_admin_cannot_be_demoted(world):
    second = make_user(world.practice, "second@riverside.example", Membership.Role.ADMIN)
    deactivate(world.admin, second)
    response = client_for(world.admin).post(
        reverse("practice:member_role", args=[membership(world.admin).pk]), {"role": "counselor"}, follow=True
    )
    assert "at least one active admin" in page_text(response)
    assert membership(world.admin).role == "admin"


def test_reactivated_counselor_can_sign_in_again(world):
    deactivate(world.admin, world.owner)
    client_for(world.admin).post(reverse("practice:member_reactivate", args=[membership(world.owner).pk]))
    assert Client().post(reverse("login"), {"username": world.owner.email, "password": PASSWORD}).status_code == 302
    assert AuditEvent.objects.filter(action="member.reactivate").count() == 1


@pytest.mark.parametrize("who, status", [("colleague", 403), ("outsider_admin", 404)])
def test_only_the_practices_admin_can_deactivate(world, who, status):
    assert deactivate(getattr(world, who), world.owner).status_code == status
    assert User.objects.get(pk=world.owner.pk).is_active


def test_deactivation_needs_a_post(world):
    response = client_for(world.admin).get(reverse("practice:member_deactivate", args=[membership(world.owner).pk]))
    assert response.status_code == 405


# --- Transfers -------------------------------------------------------------------------------------


def transfer(admin, source, data):
    return client_for(admin).post(reverse("clients:transfer", args=[membership(source).pk]), data)


def test_transferred_couple_appears_only_in_the_new_counselors_caseload(world):
    response = transfer(world.admin, world.owner, {"to": world.colleague.pk, "couples": [world.couple.pk]})
    assert response.status_code == 302
    assert "Taylor &amp; Jordan" in client_for(world.colleague).get(reverse("assessments:caseload")).content.decode()
    assert "Taylor &amp; Jordan" not in client_for(world.owner).get(reverse("assessments:caseload")).content.decode()
    detail = reverse("assessments:couple", args=[world.couple.pk])
    assert client_for(world.owner).get(detail).status_code == 404
    assert client_for(world.colleague).get(detail).status_code == 200
    event = AuditEvent.objects.get(action="couple.transfer")
    assert event.detail == {"from_user": world.owner.pk, "to_user": world.colleague.pk}


def test_all_of_a_deactivated_counselors_couples_move_at_once(world):
    second = make_couple(world.owner, label="Second couple")
    deactivate(world.admin, world.owner)
    transfer(world.admin, world.owner, {"to": world.colleague.pk, "all_couples": "on"})
    assert set(Couple.objects.filter(counselor=world.colleague)) == {world.couple, second}
    assert AuditEvent.objects.filter(action="couple.transfer").count() == 2


def test_transfer_needs_a_choice_of_couples(world):
    response = transfer(world.admin, world.owner, {"to": world.colleague.pk})
    assert response.status_code == 200
    assert "choose at least one couple" in page_text(response)
    assert Couple.objects.get(pk=world.couple.pk).counselor == world.owner


@pytest.mark.parametrize("target", ["outsider", "inactive"])
def test_couples_cannot_move_to_another_practice_or_an_inactive_counselor(world, target):
    person = world.outsider
    if target == "inactive":
        person = make_user(world.practice, "gone@riverside.example")
        User.objects.filter(pk=person.pk).update(is_active=False)
    response = transfer(world.admin, world.owner, {"to": person.pk, "couples": [world.couple.pk]})
    assert response.status_code == 200
    assert Couple.objects.get(pk=world.couple.pk).counselor == world.owner


def test_outsider_admin_cannot_transfer_couples_of_another_practice(world):
    response = transfer(world.outsider_admin, world.owner, {"to": world.outsider.pk, "couples": [world.couple.pk]})
    assert response.status_code == 404
    assert Couple.objects.get(pk=world.couple.pk).counselor == world.owner


def test_counselor_cannot_transfer_their_colleagues_couples(world):
    response = transfer(world.colleague, world.owner, {"to": world.colleague.pk, "couples": [world.couple.pk]})
    assert response.status_code == 403


# --- Roles and the people page -------------------------------------------------------------------


def test_admin_makes_a_counselor_an_admin_and_it_is_audited(world):
    client_for(world.admin).post(reverse("practice:member_role", args=[membership(world.owner).pk]), {"role": "admin"})
    assert membership(world.owner).role == "admin"
    event = AuditEvent.objects.get(action="member.role")
    assert event.detail == {"old": "counselor", "new": "admin"}


def test_an_unknown_role_changes_nothing(world):
    client_for(world.admin).post(reverse("practice:member_role", args=[membership(world.owner).pk]), {"role": "owner"})
    assert membership(world.owner).role == "counselor"


def test_people_page_shows_deactivated_people_with_couples_to_transfer(world):
    deactivate(world.admin, world.owner)
    page = page_text(client_for(world.admin).get(reverse("practice:overview")))
    assert "Deactivated" in page and "to transfer" in page


def test_people_page_runs_a_fixed_number_of_queries(world, django_assert_num_queries):
    for n in range(5):
        make_user(world.practice, f"extra{n}@riverside.example")
    client = client_for(world.admin)
    # session, user + membership + practice, members with couple counts, pending invitations,
    # and the session saved on every request (savepoint, update, release)
    with django_assert_num_queries(7):
        assert client.get(reverse("practice:overview")).status_code == 200
