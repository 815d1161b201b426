"""In-office answering on "this device": a marked practice tablet handed to one partner without a code."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from assessments import office
from assessments.models import Response
from practice.models import AuditEvent
from tests.assessments.answering_helpers import answer_everything
from tests.assessments.test_in_office import begin, office_device
from tests.conftest import make_assignment, page_text


def tablet(world, user=None):
    """A browser signed in as the counselor and marked as the practice's tablet."""
    device = office_device()
    device.force_login(user or world.owner)
    marked = device.post(reverse("assessments:device"), {"action": "mark"})
    assert marked.status_code == 302 and office.DEVICE_COOKIE in device.cookies
    return device


def hand_over(device, response):
    return device.post(reverse("assessments:this_device", args=[response.pk]))


def responses(world):
    assignment, _tokens = make_assignment(world.couple)
    return {r.partner.position: r for r in Response.objects.filter(assignment=assignment).select_related("partner")}


def test_an_unmarked_browser_is_not_handed_over_and_the_counselor_stays_signed_in(world):
    a = responses(world)["A"]
    device = office_device()
    device.force_login(world.owner)
    reply = hand_over(device, a)
    assert reply.status_code == 302 and reply["Location"] == reverse("assessments:couple", args=[world.couple.pk])
    assert "not marked as the practice's tablet" in page_text(device.get(reply["Location"]))
    assert device.get(reverse("assessments:welcome", args=[a.pk])).status_code == 403


def test_the_couple_page_offers_this_device_only_on_the_marked_tablet(world):
    responses(world)
    device = office_device()
    device.force_login(world.owner)
    couple_url = reverse("assessments:couple", args=[world.couple.pk])
    assert "On this device" not in page_text(device.get(couple_url))
    assert "On this device" in page_text(tablet(world).get(couple_url))


def test_handing_the_tablet_over_ends_the_counselors_session_and_opens_only_that_partner(world):
    a = responses(world)["A"]
    device = tablet(world)
    reply = hand_over(device, a)
    assert reply.status_code == 302 and reply["Location"] == reverse("assessments:welcome", args=[a.pk])
    assert "You are answering as Taylor" in page_text(device.get(reply["Location"]))
    # The counselor is signed out on the tablet: the partner reaches no staff page.
    for name, args in (("caseload", []), ("couple", [world.couple.pk]), ("inbox", [])):
        page = device.get(reverse(f"assessments:{name}", args=args))
        assert page.status_code == 302 and page["Location"].startswith(reverse("login"))
    assert {"response.office_device_handed", "response.office_device_used", "office.device_marked"} <= set(
        AuditEvent.objects.values_list("action", flat=True)
    )


def test_the_next_partner_on_the_same_tablet_can_never_reach_the_first_partners_pages(world):
    both = responses(world)
    device = tablet(world)
    hand_over(device, both["A"])
    begin(device, both["A"])
    answer_everything(device, response_id=both["A"].pk)
    done = device.post(reverse("assessments:submit", args=[both["A"].pk]), follow=True)
    assert done.redirect_chain[-1][0] == reverse("assessments:here")
    assert "Taylor" not in page_text(done)
    # Handing it on takes the counselor's sign-in again; then partner B, and only B.
    assert hand_over(device, both["B"])["Location"].startswith(reverse("login"))
    device.force_login(world.owner)
    assert hand_over(device, both["B"])["Location"] == reverse("assessments:welcome", args=[both["B"].pk])
    for name in ("welcome", "results", "review", "support"):
        page = device.get(reverse(f"assessments:{name}", args=[both["A"].pk]))
        assert page.status_code == 403 and "Taylor" not in page_text(page)


def test_five_idle_minutes_end_a_tablet_visit_as_they_end_a_code_visit(world):
    a = responses(world)["A"]
    device = tablet(world)
    hand_over(device, a)
    begin(device, a)
    session = device.session
    session[office.SEEN_KEY] = int((timezone.now() - timedelta(seconds=office.IDLE_SECONDS + 1)).timestamp())
    session.save()
    idle = device.get(reverse("assessments:section", args=[a.pk, 1]))
    assert idle.status_code == 302 and idle["Location"] == reverse("assessments:here")
    assert device.get(reverse("assessments:welcome", args=[a.pk])).status_code == 403


def test_another_practices_tablet_or_another_counselors_couple_is_refused(world):
    a = responses(world)["A"]
    elsewhere = tablet(world, world.outsider)
    elsewhere.force_login(world.owner)  # the owner signs in on another practice's tablet
    assert hand_over(elsewhere, a)["Location"] == reverse("assessments:couple", args=[world.couple.pk])
    colleague_tablet = tablet(world, world.colleague)
    assert hand_over(colleague_tablet, a).status_code == 404
    assert not AuditEvent.objects.filter(action="response.office_device_used").exists()


def test_a_tablet_can_be_unmarked(world):
    device = tablet(world)
    device.post(reverse("assessments:device"), {"action": "unmark"})
    assert "Use this browser as the practice's tablet" in page_text(device.get(reverse("assessments:device")))
    bad = device.post(reverse("assessments:device"), {"action": "sideways"})
    assert bad.status_code == 400
