"""'I'd like to talk about this': a partner's private flag and note, saved like an answer, for the counselor only."""

import pytest
from django.urls import reverse

from assessments.models import TalkFlag
from tests.assessments.answering_helpers import answer_everything, section_codes, start
from tests.conftest import client_for, deliver, make_assignment, page_text

NOTE = "Money worries since the move, SENTINEL-NOTE-7"


def flag(client, item, seq, *, talk=True, note="", response_id=None):
    data = {"item": item, "seq": seq, "note": note}
    if talk:
        data["talk"] = "on"
    return client.post(reverse("assessments:save_talk", args=[response_id or client.response_id]), data)


def both_finished(couple, flag_a=None):
    assignment, tokens = make_assignment(couple)
    a, b = start(tokens["A"]), start(tokens["B"])
    if flag_a:
        flag_a(a)
    for client in (a, b):
        answer_everything(client, value=4)
        client.post(reverse("assessments:submit", args=[client.response_id]))
    return assignment, a, b


def test_a_flag_and_note_autosave_and_show_again_on_the_partners_own_page(world):
    assignment, tokens = make_assignment(world.couple)
    a = start(tokens["A"])
    code = section_codes()[0][0]
    assert flag(a, code, 1, note=NOTE).status_code == 204
    page = page_text(a.get(reverse("assessments:section", args=[a.response_id, 1])))
    assert NOTE in page
    assert f'name="talk-{code}" value="on" checked' in page
    stored = TalkFlag.objects.get(response_id=a.response_id)
    assert (stored.item.code, stored.wanted, stored.note) == (code, True, NOTE)


def test_a_late_save_never_undoes_a_newer_choice(world):
    assignment, tokens = make_assignment(world.couple)
    a = start(tokens["A"])
    assert flag(a, "COM1", 2, talk=False).status_code == 204  # unticked, seq 2
    late = flag(a, "COM1", 1, note="old")
    assert late.status_code == 409 and "newer" in page_text(late)
    assert flag(a, "COM1", 2, talk=False).status_code == 204  # the same save again: a retry lands
    assert TalkFlag.objects.get(response_id=a.response_id).wanted is False


def test_bad_input_is_a_readable_4xx_and_stores_nothing(world):
    assignment, tokens = make_assignment(world.couple)
    a = start(tokens["A"])
    other_item = flag(a, "NOPE9", 1)
    assert other_item.status_code == 400 and "not part of your assessment" in page_text(other_item)
    too_long = flag(a, "COM1", 1, note="x" * 501)
    assert too_long.status_code == 400 and "500 characters" in page_text(too_long)
    no_seq = a.post(reverse("assessments:save_talk", args=[a.response_id]), {"item": "COM1", "talk": "on"})
    assert no_seq.status_code == 400
    assert not TalkFlag.objects.exists()


def test_the_other_partner_cannot_flag_on_their_partners_response(world):
    assignment, tokens = make_assignment(world.couple)
    a, b = start(tokens["A"]), start(tokens["B"])
    assert flag(b, "COM1", 1, note="mine", response_id=a.response_id).status_code == 403
    assert not TalkFlag.objects.exists()


def test_without_javascript_the_section_form_saves_the_flag_and_keeps_a_too_long_note(world):
    assignment, tokens = make_assignment(world.couple)
    a = start(tokens["A"])
    codes = section_codes()[0]
    url = reverse("assessments:section", args=[a.response_id, 1])
    answers = {f"item-{code}": "3" for code in codes}
    refused = a.post(url, {**answers, f"talk-{codes[1]}": "on", f"note-{codes[1]}": "y" * 600})
    assert refused.status_code == 400
    text = page_text(refused)
    assert "500 characters" in text and "y" * 600 in text  # what was typed is still on the page
    assert not TalkFlag.objects.exists() and not a.get(url).context["page"].answered
    saved = a.post(url, {**answers, f"talk-{codes[1]}": "on", f"note-{codes[1]}": NOTE, f"talkseq-{codes[1]}": "1"})
    assert saved.status_code == 302
    stored = TalkFlag.objects.get(response_id=a.response_id)
    assert (stored.item.code, stored.wanted, stored.note) == (codes[1], True, NOTE)
    # Posting the page again without the tick unticks it (the note is kept, for the partner only).
    assert a.post(url, {**answers, f"note-{codes[1]}": NOTE, f"talkseq-{codes[1]}": "2"}).status_code == 302
    assert TalkFlag.objects.get(response_id=a.response_id).wanted is False


def test_after_submitting_nothing_changes(world):
    assignment, a, b = both_finished(world.couple, lambda a: flag(a, "COM1", 1, note=NOTE))
    refused = flag(a, "COM1", 2, talk=False)
    assert refused.status_code == 409
    assert TalkFlag.objects.get(response_id=a.response_id).wanted is True


def test_the_comparison_lists_the_flags_first_for_the_session(world):
    assignment, a, b = both_finished(world.couple, lambda a: flag(a, "COM1", 1, note=NOTE))
    url = reverse("assessments:comparison", args=[world.couple.pk, assignment.pk])
    text = page_text(client_for(world.owner).get(url))
    assert "For the session" in text and NOTE in text
    assert text.index("For the session") < text.index("Scores side by side")
    assert "Taylor" in text[text.index("For the session") : text.index(NOTE)]


def test_an_unticked_flag_is_not_listed_for_the_counselor(world):
    def change_mind(a):
        flag(a, "COM1", 1, note=NOTE)
        flag(a, "COM1", 2, talk=False, note=NOTE)

    assignment, a, b = both_finished(world.couple, change_mind)
    url = reverse("assessments:comparison", args=[world.couple.pk, assignment.pk])
    text = page_text(client_for(world.owner).get(url))
    assert NOTE not in text and "For the session" not in text


def test_a_colleague_or_outsider_never_sees_the_flags(world):
    assignment, a, b = both_finished(world.couple, lambda a: flag(a, "COM1", 1, note=NOTE))
    url = reverse("assessments:comparison", args=[world.couple.pk, assignment.pk])
    for user in (world.colleague, world.outsider):
        reply = client_for(user).get(url)
        assert reply.status_code == 404 and NOTE not in page_text(reply)


@pytest.mark.parametrize("kind", ["answers", "scores", "completion"])
def test_no_export_carries_a_note(world, kind):
    assignment, a, b = both_finished(world.couple, lambda a: flag(a, "COM1", 1, note=NOTE))
    for deidentified in ("", "on"):
        data = {"kind": kind, "format": "csv"}
        if deidentified:
            data["deidentified"] = deidentified
        reply = client_for(world.admin).post(reverse("assessments:exports"), data)
        body = b"".join(reply.streaming_content) if reply.streaming else reply.content
        assert reply.status_code == 200 and NOTE.encode() not in body


def test_the_shared_summary_and_every_email_leave_the_note_out(world, mailoutbox):
    assignment, a, b = both_finished(world.couple, lambda a: flag(a, "COM1", 1, note=NOTE))
    counselor = client_for(world.owner)
    release = counselor.post(reverse("assessments:release", args=[world.couple.pk, assignment.pk]))
    assert release.status_code == 302
    deliver()
    for partner in (a, b):
        summary = partner.get(reverse("assessments:shared_summary", args=[partner.response_id]))
        assert summary.status_code == 200 and NOTE not in page_text(summary)
    assert mailoutbox  # invitations, "both finished", "summary shared"
    for mail in mailoutbox:
        assert NOTE not in mail.body and all(NOTE not in str(body) for body, _type in mail.alternatives)
