"""Each partner in their own language: set by the counselor, switched by the partner, kept on the response."""

import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import translation

from assessments.models import Response
from clients.models import Partner
from tests.assessments.answering_helpers import answer_everything, save, start
from tests.conftest import client_for, deliver, make_assignment, page_text

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
