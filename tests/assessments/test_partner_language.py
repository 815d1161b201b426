"""Each partner in their own language: set by the counselor, switched by the partner, kept on the response."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone, translation

from assessments import comparison, pdf, translations
from assessments.models import InstrumentTranslation, Response
from clients.models import Partner
from tests.assessments.answering_helpers import all_codes, answer_everything, save, section_codes, start
from tests.clients.factories import visible_text
from tests.conftest import client_for, deliver, make_assignment, make_couple, page_text

SPANISH_COM1 = "Hablar con mi pareja me resulta fácil y natural."


def html_lang(page):
    return re.search(r'<html lang="([^"]+)"', page).group(1)


def section_one(client):
    return page_text(client.get(reverse("assessments:section", args=[client.response_id, 1])))


@pytest.fixture
def bilingual(world):
    """Partner A answers in Spanish, partner B in English."""
    Partner.objects.filter(couple=world.couple, position="A").update(language="es")
    assignment, tokens = make_assignment(world.couple)
    a, b = start(tokens["A"]), start(tokens["B"])
    return a, b


def test_each_partner_reads_the_questions_and_the_page_in_their_own_language(bilingual):
    a, b = bilingual
    spanish, english = section_one(a), section_one(b)
    assert html_lang(spanish) == "es" and html_lang(english) == "en"
    assert SPANISH_COM1 in spanish and SPANISH_COM1 not in english
    assert "Prefiero no responder" in spanish and "Prefer not to answer" in english
    # The other partner's language never follows anyone: a staff page after both stays English.
    assert html_lang(page_text(a.get(reverse("assessments:finished")))) == "en"


def test_the_partner_switches_language_and_keeps_every_answer(bilingual):
    a, _b = bilingual
    assert save(a, "COM1", 2, 1).status_code in (200, 204)
    where = reverse("assessments:section", args=[a.response_id, 1])
    reply = a.post(reverse("assessments:partner_language", args=[a.response_id]), {"language": "en", "next": where})
    assert reply.status_code == 302 and reply["Location"] == where
    page = section_one(a)
    assert html_lang(page) == "en" and SPANISH_COM1 not in page
    assert 'name="item-COM1" value="2" checked' in page
    response = Response.objects.select_related("partner").get(pk=a.response_id)
    assert response.language == "en" and response.partner.language == "en"


def test_a_language_switch_refuses_another_site_and_unknown_languages(bilingual):
    a, _b = bilingual
    url = reverse("assessments:partner_language", args=[a.response_id])
    reply = a.post(url, {"language": "xx", "next": "https://evil.example/"})
    assert reply.status_code == 302 and "evil" not in reply["Location"]
    assert Partner.objects.get(position="A").language == "es"


def test_the_other_partner_cannot_switch_this_partners_language(bilingual):
    a, b = bilingual
    reply = b.post(reverse("assessments:partner_language", args=[a.response_id]), {"language": "en"})
    assert reply.status_code in (403, 404)
    assert Partner.objects.get(position="A").language == "es"


def test_a_submitted_response_keeps_the_language_it_was_answered_in(bilingual):
    a, b = bilingual
    answer_everything(a)
    assert a.post(reverse("assessments:submit", args=[a.response_id])).status_code == 302
    a.post(reverse("assessments:partner_language", args=[a.response_id]), {"language": "en"})
    assert Response.objects.get(pk=a.response_id).language == "es"


def test_the_counselor_sets_each_partners_language_names_and_pronouns_when_adding_the_couple(world):
    world.practice.default_language = "es"
    world.practice.save()
    counselor = client_for(world.owner)
    form = page_text(counselor.get(reverse("clients:couple_create")))
    assert re.search(r'<option value="es" selected>', form)
    reply = counselor.post(
        reverse("clients:couple_create"),
        {
            "label": "Sam & Alex",
            "a_first_name": "Samuel",
            "a_email": "sam@example.com",
            "a_display_name": "Sam",
            "a_pronouns": "they/them",
            "a_language": "es",
            "b_first_name": "Alex",
            "b_email": "alex@example.com",
            "b_language": "en",
        },
    )
    assert reply.status_code == 302
    a, b = Partner.objects.filter(couple__label="Sam & Alex").order_by("position")
    assert (a.language, a.name, a.pronouns) == ("es", "Sam", "they/them")
    assert (b.language, b.name, b.pronouns) == ("en", "Alex", "")


def test_each_partner_gets_their_e_mails_in_their_own_language_plain_and_html(world):
    Partner.objects.filter(couple=world.couple, position="A").update(language="es")
    make_assignment(world.couple)
    # An English page was the last thing this process rendered: the worker must not inherit it.
    translation.activate("en")
    deliver()
    by_address = {m.to[0]: m for m in mail.outbox}
    spanish, english = by_address["taylor@example.com"], by_address["jordan@example.com"]
    assert spanish.subject == "Un mensaje de Riverside Counseling"
    assert english.subject == "A message from Riverside Counseling"
    spanish_html, english_html = spanish.alternatives[0][0], english.alternatives[0][0]
    assert "Hola, Taylor:" in spanish.body and "Abrir mi cuestionario" in spanish_html
    assert '<html lang="es">' in spanish_html and '<html lang="en">' in english_html
    assert "Hello Jordan," in english.body and "Open my questionnaire" in english_html
    assert "Hola" not in english.body + english_html


# --- Comparing two partners who answered in two languages ------------------------------------


def answer_in_pattern(client, shift):
    """Answer every statement with a varied pattern (safety statements "never"), then submit."""
    safety_codes = set(section_codes()[-1])
    for i, code in enumerate(all_codes()):
        value = 1 if code in safety_codes else (i + shift) % 5 + 1
        assert save(client, code, value, 1).status_code in (200, 204)
    assert client.post(reverse("assessments:submit", args=[client.response_id])).status_code == 302


def item_rows(page):
    """Each statement row of the comparison as (statement, A's answer, B's answer)."""
    rows = re.findall(r'<tr class="cat-[a-z_]+">(.*?)</tr>', page, re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows]
    return [(re.sub(r"<[^>]+>", "", c[0]).strip(), c[1].strip(), c[2].strip()) for c in cells]


def finished_couple(world, couple, languages):
    for position, language in zip("AB", languages, strict=True):
        Partner.objects.filter(couple=couple, position=position).update(language=language)
    assignment, tokens = make_assignment(couple)
    a, b = start(tokens["A"]), start(tokens["B"])
    answer_in_pattern(a, 0)
    answer_in_pattern(b, 2)
    deliver(now=timezone.now() + timedelta(hours=2))
    return assignment


def test_partners_in_two_languages_score_and_compare_as_if_both_had_answered_in_english(world):
    mixed = finished_couple(world, world.couple, ("es", "en"))
    control_couple = make_couple(
        world.owner, label="Robin & Kai", a=("Robin", "r@example.com"), b=("Kai", "k@example.com")
    )
    english = finished_couple(world, control_couple, ("en", "en"))
    responses = {a.partner.position: a for a in mixed.responses.select_related("partner", "score")}
    assert responses["A"].language == "es" and responses["B"].language == "en"
    controls = {r.partner.position: r for r in english.responses.select_related("partner", "score")}
    for position in "AB":
        ours, theirs = responses[position].score, controls[position].score
        assert ours.domains == theirs.domains and ours.connection_index == theirs.connection_index
        assert ours.attunement == theirs.attunement

    counselor = client_for(world.owner)
    reply = counselor.get(reverse("assessments:comparison", args=[mixed.couple_id, mixed.pk]))
    page = page_text(reply)
    assert html_lang(page) == "en"
    rows, control_rows = (
        item_rows(page),
        item_rows(page_text(counselor.get(reverse("assessments:comparison", args=[english.couple_id, english.pk])))),
    )
    # Row by row: the same statements (in English), both answers on every row, the same words.
    assert rows == control_rows
    report = comparison.report_of(mixed, comparison.responses_by_position(mixed))
    assert [row.code for row in report.items] == [
        row.code for row in comparison.report_of(english, comparison.responses_by_position(english)).items
    ]
    assert len(rows) == len(report.items) > 20
    assert all(a_words and b_words for _statement, a_words, b_words in rows)
    # Answer labels in the counselor's language, never the Spanish label strings.
    spanish = translations.texts(mixed.instrument, "es")
    english_labels = {
        label for scale in mixed.instrument.definition["scales"].values() for label in scale["labels"].values()
    }
    spanish_labels = {
        label for scale in spanish["scales"].values() for label in scale["labels"].values()
    } - english_labels
    assert {cell for row in rows for cell in row[1:]} <= english_labels | {"Skipped", "–"}
    assert spanish_labels and not any(label in page for label in spanish_labels)
    assert SPANISH_COM1 not in page
    # It says which language each partner answered in, and that the Spanish is not yet validated.
    text = visible_text(reply)
    assert "Taylor answered in Spanish (translated, not yet validated)" in text
    assert "Jordan answered in English" in text and "Jordan answered in English (" not in text
    control_text = visible_text(counselor.get(reverse("assessments:comparison", args=[english.couple_id, english.pk])))
    assert "not yet validated" not in control_text


def test_the_pdf_says_which_partner_answered_in_a_translation_not_yet_validated(world):
    mixed = finished_couple(world, world.couple, ("es", "en"))
    document = pdf.document(pdf.report_html(mixed), world.practice)
    words = " ".join(b.text for page in document.pages for b in page._page_box.descendants() if hasattr(b, "text"))
    words = re.sub(r"\s+", " ", words)
    assert "Taylor answered in Spanish (translated, not yet validated)" in words
    assert "Jordan answered in English" in words


@pytest.fixture
def fresh_texts():
    """The cached overlays are per process: forget them before and after a test that changes a status."""
    translations.clear_cache()
    yield
    translations.clear_cache()


def test_a_validated_translation_is_not_marked(world, fresh_texts):
    mixed = finished_couple(world, world.couple, ("es", "en"))
    mixed.instrument.translations.filter(language="es").update(status=InstrumentTranslation.Status.VALIDATED)
    translations.clear_cache()
    text = visible_text(
        client_for(world.owner).get(reverse("assessments:comparison", args=[mixed.couple_id, mixed.pk]))
    )
    assert "Taylor answered in Spanish" in text and "not yet validated" not in text


# --- Display names and pronouns in what the counselor reads ----------------------------------


def test_the_counselors_pages_call_each_partner_by_display_name_with_pronouns_where_introduced(world):
    Partner.objects.filter(couple=world.couple, position="A").update(display_name="Tay", pronouns="they/them")
    mixed = finished_couple(world, world.couple, ("es", "en"))
    counselor = client_for(world.owner)
    couple_page = visible_text(counselor.get(reverse("assessments:couple", args=[world.couple.pk])))
    assert "Tay (they/them)" in couple_page
    reply = counselor.get(reverse("assessments:comparison", args=[mixed.couple_id, mixed.pk]))
    text = visible_text(reply)
    assert "Tay (they/them) answered in Spanish (translated, not yet validated)" in text
    assert '<th scope="col">Tay</th>' in reply.content.decode()
    # The couple's label is the counselor's own words; nowhere else is the first name used.
    assert re.search(r"Taylor(?! & Jordan)", text) is None


def test_messages_and_the_waiting_page_use_the_display_name(world):
    Partner.objects.filter(couple=world.couple, position="A").update(display_name="Tay", pronouns="they/them")
    assignment, _tokens = make_assignment(world.couple)
    counselor = client_for(world.owner)
    waiting = visible_text(counselor.get(reverse("assessments:comparison", args=[world.couple.pk, assignment.pk])))
    assert "Tay and Jordan are still answering" in waiting
    response = assignment.responses.get(partner__position="A")
    reply = counselor.post(reverse("assessments:resend", args=[response.pk]), follow=True)
    message = visible_text(reply)
    assert re.search(r"(invitation was sent to|An invitation went to) Tay\b", message)
