import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from assessments import pdf
from assessments.models import Assignment, ComparisonReport, SafetyAlert
from practice import outbox
from practice.models import AuditEvent, Job
from tests.clients.factories import answer, bulk_caseload, finished_assignment, visible_text
from tests.conftest import client_for, deliver, make_assignment, make_couple

OTHERS = ["colleague", "admin", "outsider", "outsider_admin"]


def comparison_url(assignment, **params):
    url = reverse("assessments:comparison", args=[assignment.couple_id, assignment.pk])
    if params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return url


def pdf_url(assignment):
    return reverse("assessments:comparison_pdf", args=[assignment.couple_id, assignment.pk])


@pytest.fixture
def finished(world):
    # Taylor agrees with every healthy statement; Jordan is unsure, except for two statements:
    # COM1 (Jordan disagrees) and COM4, a warning sign both answered "the other way".
    assignment, responses, tokens = finished_assignment(
        world.couple,
        levels=(4, 3),
        overrides=({"COM4": 5}, {"COM1": 1, "COM4": 1}),
    )
    return assignment


@pytest.mark.smoke
def test_counselor_reads_both_partners_side_by_side_down_to_the_statements(world, finished):
    response = client_for(world.owner).get(comparison_url(finished))
    assert response.status_code == 200
    page = visible_text(response)
    assert "Taylor & Jordan: side by side" in page
    assert "Communication & feeling understood" in page
    assert "Talking with my partner feels easy and natural." in page
    assert "Scores side by side" in page and "<svg" in response.content.decode()
    assert "Know your partner (attunement)" in page
    assert "Worth working on" in page
    # Explanations sit beside the numbers.
    assert "Bands describe the 0–100 range; they are not norms" in page


def test_answers_are_words_and_a_warning_sign_shows_what_the_partner_chose(world, finished):
    html = client_for(world.owner).get(comparison_url(finished)).content.decode()
    row = re.search(r"<tr class=\"cat-[a-z_]+\">\s*<td>My partner often misreads what I mean\..*?</tr>", html, re.S)
    assert row is not None
    cells = re.findall(r"<td(?: data-label=\"[^\"]*\")?>(.*?)</td>", row.group(0), re.S)
    # Taylor chose "Strongly agree" (keyed 1: negative), Jordan "Strongly disagree" (keyed 5).
    assert "Strongly agree" in cells[1] and "Strongly disagree" in cells[2]
    assert "Different views" in cells[3]


def test_different_views_come_first_within_each_domain(world, finished):
    html = client_for(world.owner).get(comparison_url(finished)).content.decode()
    communication = html[html.index("Communication &amp; feeling understood</h3>") :]
    communication = communication[: communication.index("</table>")]
    categories = re.findall(r'<tr class="cat-([a-z_]+)">', communication)
    assert categories[:2] == ["different_views", "different_views"]
    assert "different_views" not in categories[2:]


def test_counselor_filters_statements_by_category(world, finished):
    client = client_for(world.owner)
    html = client.get(comparison_url(finished, category="different_views")).content.decode()
    assert set(re.findall(r'<tr class="cat-([a-z_]+)">', html)) == {"different_views"}
    unknown = client.get(comparison_url(finished, category="everything"))
    assert unknown.status_code == 200
    assert len(re.findall(r'<tr class="cat-', unknown.content.decode())) == 30


def test_htmx_category_filter_returns_only_the_statements(world, finished):
    response = client_for(world.owner).get(comparison_url(finished, category="unsure"), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="items"')
    assert "<html" not in html and "Scores side by side" not in html
    assert set(re.findall(r'<tr class="cat-([a-z_]+)">', html)) == {"unsure"}


@pytest.mark.smoke
def test_every_view_of_the_comparison_is_audited_without_answers(world, finished):
    client = client_for(world.owner)
    client.get(comparison_url(finished))
    client.get(comparison_url(finished, category="shared_strength"), HTTP_HX_REQUEST="true")
    events = AuditEvent.objects.filter(action="comparison.view")
    assert events.count() == 2
    assert {e.object_id for e in events} == {str(finished.pk)}
    assert all(e.actor == world.owner for e in events)
    assert all(set(e.detail) <= {"category", "ready"} for e in events)


@pytest.mark.parametrize("who", OTHERS)
def test_comparison_is_a_404_for_everyone_but_the_counselor(world, finished, who):
    client = client_for(getattr(world, who))
    assert client.get(comparison_url(finished)).status_code == 404
    assert client.get(pdf_url(finished)).status_code == 404
    assert not AuditEvent.objects.filter(action__startswith="comparison.").exists()


def test_an_administration_reached_through_another_couples_url_is_a_404(world, finished):
    other = make_couple(world.owner, "Other & Couple", a=("O", "o@x.example"), b=("P", "p@x.example"))
    url = reverse("assessments:comparison", args=[other.pk, finished.pk])
    assert client_for(world.owner).get(url).status_code == 404


def test_before_both_finished_the_page_names_who_is_still_answering(world):
    assignment, _ = make_assignment(world.couple)
    answer(assignment.responses.get(partner__position="A"))
    response = client_for(world.owner).get(comparison_url(assignment))
    assert response.status_code == 200
    page = visible_text(response)
    assert "The comparison is not ready yet" in page
    assert "Jordan is still answering" in page
    assert "Talking with my partner" not in page
    pdf = client_for(world.owner).get(pdf_url(assignment))
    assert pdf.status_code == 200 and pdf["Content-Type"].startswith("text/html")
    assert "Jordan is still answering" in visible_text(pdf)


def test_before_anyone_finished_both_names_are_given(world):
    assignment, _ = make_assignment(world.couple)
    page = visible_text(client_for(world.owner).get(comparison_url(assignment)))
    assert "Taylor and Jordan are still answering" in page


def test_safety_alert_is_at_the_top_for_the_counselor_and_marked_seen(world):
    assignment, responses, _ = finished_assignment(world.couple, overrides=(None, {"S3": 3}))
    response = client_for(world.owner).get(comparison_url(assignment))
    page = visible_text(response)
    assert page.index("Safety alert — for you only") < page.index("Scores side by side")
    assert "Jordan: Urgent" in page
    alert = SafetyAlert.objects.get(response=responses["B"])
    assert alert.first_viewed_at is not None and alert.acknowledged_at is None  # seen is not acknowledged
    assert not SafetyAlert.objects.filter(response=responses["A"]).exists()


def test_no_safety_alert_when_none_was_raised(world, finished):
    assert "Safety alert" not in visible_text(client_for(world.owner).get(comparison_url(finished)))


@pytest.mark.parametrize("size", [1, 50, 500])
def test_comparison_query_count_does_not_grow_with_the_caseload(world, django_assert_num_queries, size):
    assignment, _, _ = finished_assignment(world.couple, overrides=(None, {"S5": 3}))
    if size > 1:
        bulk_caseload(world.owner, size - 1)
    deliver(now=timezone.now() + timedelta(hours=2))  # the completing submit's job stores the report
    client = client_for(world.owner)
    client.get(reverse("assessments:caseload"))
    # session, user + membership, administration (with couple and instrument), both responses
    # (with partner and score), the stored report, the safety alert marked seen, the audit
    # event, what they would like to talk about, the inbox's "reviewed" mark and (the first time
    # only) its audit event and the couple's caseload row (its inbox count). (The session is
    # written at most once a minute: not on this request.)
    with django_assert_num_queries(11):
        client.get(comparison_url(assignment))
    # Later views: the alert is already marked seen and the mark is there, so three queries fewer.
    with django_assert_num_queries(8):
        client.get(comparison_url(assignment, category="different_views"), HTTP_HX_REQUEST="true")


@pytest.mark.smoke
def test_counselor_downloads_the_report_as_a_pdf_and_it_is_audited(world, finished):
    response = client_for(world.owner).get(pdf_url(finished))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith('attachment; filename="comparison-taylor-jordan-')
    assert response.content.startswith(b"%PDF")
    assert AuditEvent.objects.filter(action="comparison.pdf", object_id=str(finished.pk)).count() == 1


def test_the_pdf_is_the_same_report_without_the_safety_answers(world, monkeypatch):
    import weasyprint

    drawn = []
    real_html = weasyprint.HTML

    def recording_html(*args, string=None, **kwargs):
        drawn.append(string)
        return real_html(*args, string=string, **kwargs)

    monkeypatch.setattr(weasyprint, "HTML", recording_html)
    assignment, _, _ = finished_assignment(world.couple, overrides=(None, {"S1": 2}))
    response = client_for(world.owner).get(pdf_url(assignment))
    assert response.content.startswith(b"%PDF")
    (html,) = drawn
    assert "Talking with my partner feels easy and natural." in html
    assert "Scores side by side" in html and "<svg" in html
    assert "Safety information is not printed" in html
    assert "Safety alert" not in html and "hit, pushed, grabbed" not in html
    assert "<form" not in html


# --- Releasing the summary -------------------------------------------------------------------


def release_url(assignment):
    return reverse("assessments:release", args=[assignment.couple_id, assignment.pk])


@pytest.mark.smoke
def test_counselor_releases_the_summary_when_both_agreed(world, finished):
    client = client_for(world.owner)
    assert "Share the summary" in visible_text(client.get(comparison_url(finished)))
    response = client.post(release_url(finished), follow=True)
    assert "The summary is shared" in visible_text(response)
    finished.refresh_from_db()
    assert finished.released_at is not None
    assert AuditEvent.objects.filter(action="comparison.release", object_id=str(finished.pk)).count() == 1


def test_releasing_twice_keeps_the_first_release(world, finished):
    client = client_for(world.owner)
    client.post(release_url(finished))
    finished.refresh_from_db()
    first = finished.released_at
    response = client.post(release_url(finished), follow=True)
    assert "The summary was already shared." in visible_text(response)
    finished.refresh_from_db()
    assert finished.released_at == first
    assert AuditEvent.objects.filter(action="comparison.release").count() == 1


def test_release_is_refused_when_a_partner_did_not_agree_to_share(world):
    assignment, _, _ = finished_assignment(world.couple, consent=(True, False))
    client = client_for(world.owner)
    assert "Jordan did not agree to share a summary" in visible_text(client.get(comparison_url(assignment)))
    response = client.post(release_url(assignment), follow=True)
    assert "Jordan did not agree to share a summary, so it stays private." in visible_text(response)
    assignment.refresh_from_db()
    assert assignment.released_at is None


def test_release_is_refused_before_both_finished(world):
    assignment, _ = make_assignment(world.couple)
    answer(assignment.responses.get(partner__position="B"))
    response = client_for(world.owner).post(release_url(assignment), follow=True)
    assert "Taylor is still answering" in visible_text(response)
    assert Assignment.objects.get(pk=assignment.pk).released_at is None


@pytest.mark.parametrize("who", OTHERS)
def test_nobody_else_can_release_a_summary(world, finished, who):
    assert client_for(getattr(world, who)).post(release_url(finished)).status_code == 404
    finished.refresh_from_db()
    assert finished.released_at is None


def test_release_needs_a_post(world, finished):
    assert client_for(world.owner).get(release_url(finished)).status_code == 405


def test_the_comparison_recomputes_scores_that_went_missing(world, finished):
    from assessments.models import Score

    Score.objects.filter(response__assignment=finished).delete()
    response = client_for(world.owner).get(comparison_url(finished))
    assert response.status_code == 200
    assert "Scores side by side" in visible_text(response)


@pytest.mark.parametrize(
    "path",
    [
        "/couples/99999999999999999999/",
        "/couples/1/assessments/99999999999999999999/",
        "/couples/99999999999999999999/assessments/1/report.pdf",
        "/couples/summary/99999999999999999999/",
    ],
)
def test_tampered_ids_are_a_readable_refusal_never_an_error(world, finished, path):
    response = client_for(world.owner).get(path)
    assert response.status_code in (403, 404)


@pytest.mark.parametrize(
    "path",
    [
        "/couples/99999999999999999999/notes/",
        "/couples/99999999999999999999/archive/",
        "/couples/1/assessments/99999999999999999999/release/",
        "/couples/99999999999999999999/assessments/1/release/",
    ],
)
def test_tampered_ids_in_a_post_are_refused_too(world, finished, path):
    response = client_for(world.owner).post(path, {"notes": "x", "action": "archive"})
    assert response.status_code == 404


def page_texts(document):
    """The words of each laid-out page of a WeasyPrint document, margin boxes (the footer) included."""
    return [" ".join(b.text for b in page._page_box.descendants() if hasattr(b, "text")) for page in document.pages]


def test_a_worker_lays_the_pdf_out_when_both_finish_and_the_download_sends_that_file(world, finished):
    # The completing submit queued the report; storing it queues the PDF, laid out by a worker.
    outbox.run_now(kind="comparison_report", now=timezone.now() + timedelta(hours=2))  # submitted an hour on
    assert not ComparisonReport.objects.get(assignment=finished).pdf
    assert Job.objects.get(kind="comparison_pdf").practice == world.practice  # an admin sees it if it fails
    outbox.run_now(kind="comparison_pdf")
    stored = ComparisonReport.objects.get(assignment=finished)
    assert bytes(stored.pdf).startswith(b"%PDF") and stored.pdf_made_at is not None
    # The download is that file, not a new layout: a marker put in its place comes back as it is.
    ComparisonReport.objects.filter(assignment=finished).update(pdf=b"%PDF-1.7 the stored file")
    reply = client_for(world.owner).get(pdf_url(finished))
    assert reply.status_code == 200 and reply.content == b"%PDF-1.7 the stored file"
    assert AuditEvent.objects.filter(action="comparison.pdf", object_id=str(finished.pk)).count() == 1


def test_a_pdf_that_no_longer_matches_the_page_is_never_sent_and_the_new_one_is_kept(world, finished):
    outbox.run_now(kind="comparison_report", now=timezone.now() + timedelta(hours=2))  # submitted an hour on
    outbox.run_now(kind="comparison_pdf")
    ComparisonReport.objects.filter(assignment=finished).update(pdf=b"%PDF-1.7 the stored file")
    # A partner's name changed since: the stored file shows the old one, so a new file is laid out.
    world.couple.partners.filter(position="A").update(display_name="Tay")
    reply = client_for(world.owner).get(pdf_url(finished))
    assert reply.status_code == 200 and reply.content.startswith(b"%PDF") and b"stored file" not in reply.content
    assert "Tay (upper bar)" in page_texts(pdf.document(pdf.report_html(finished), world.practice))[0]
    # ... and kept: the next download is the file this one laid out.
    assert bytes(ComparisonReport.objects.get(assignment=finished).pdf) == reply.content
    assert client_for(world.owner).get(pdf_url(finished)).content == reply.content


def test_the_pdf_starts_its_charts_on_page_one_and_numbers_every_page_with_a_discreet_footer(world, finished):
    response = client_for(world.owner).get(pdf_url(finished))
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    pages = page_texts(pdf.document(pdf.report_html(finished), world.practice))
    assert 2 <= len(pages) <= 8
    # Page 1 is not a title page: the scores and their chart begin there, both partners in the legend.
    assert "Scores side by side" in pages[0] and "Connection Index" in pages[0]
    assert "Taylor (upper bar)" in pages[0] and "Jordan (lower bar)" in pages[0]
    for number, text in enumerate(pages, 1):
        assert f"Page {number} of {len(pages)}" in text
        assert "Riverside Counseling" in text and "Confidential" in text and "Generated" in text
