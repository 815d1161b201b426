"""No item, page or e-mail assumes the partners' genders: a scan of every word people read."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTRUMENTS = sorted((ROOT / "assessments" / "instruments").glob("*.json"))
TEMPLATES = sorted((ROOT / "templates").rglob("*.html")) + sorted((ROOT / "templates").rglob("*.txt"))
CATALOGUES = sorted((ROOT / "locale").rglob("django.po"))

# Whole words only (matched case-insensitively), so "the", "shell" or Spanish adjectives pass.
# Spanish: the gendered nouns for a partner and the third-person pronouns; "él" needs its accent
# (plain "el" is the article); "bienvenida" and "lista" are nouns as well (te damos la bienvenida),
# so only their masculine adjective forms are listed. Texts say "your partner" / "tu pareja".
GENDERED = {
    "en": {
        "he",
        "she",
        "him",
        "her",
        "his",
        "hers",
        "himself",
        "herself",
        "husband",
        "wife",
        "husbands",
        "wives",
        "boyfriend",
        "girlfriend",
        "boyfriends",
        "girlfriends",
    },
    "es": {
        "él",
        "ella",
        "ellas",
        "ellos",
        "esposo",
        "esposa",
        "esposos",
        "esposas",
        "marido",
        "mujer",
        "novio",
        "novia",
        "novios",
        "novias",
        "bienvenido",
        "bienvenidos",
        "listo",
    },
}
WORDS = {word for words in GENDERED.values() for word in words}


def gendered_words(text):
    return sorted({w for w in re.findall(r"[^\W\d_]+(?:/[^\W\d_]+)?", text.lower()) if w in WORDS})


def texts_of(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from texts_of(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from texts_of(inner)


@pytest.mark.parametrize("path", INSTRUMENTS, ids=lambda p: p.name)
def test_no_instrument_text_in_any_language_is_gendered(path):
    found = {text: gendered_words(text) for text in texts_of(json.loads(path.read_text(encoding="utf-8")))}
    assert {text: words for text, words in found.items() if words} == {}


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT / "templates")))
def test_no_template_is_gendered(path):
    # Template tags and comments are code, not wording.
    text = re.sub(r"{%.*?%}|{#.*?#}|{{.*?}}", " ", path.read_text(encoding="utf-8"), flags=re.S)
    assert gendered_words(text) == []


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: p.parent.parent.name)
def test_no_translated_string_is_gendered(path):
    strings = re.findall(r'^msgstr(?:\[\d\])? "(.*)"$', path.read_text(encoding="utf-8"), flags=re.M)
    assert gendered_words(" ".join(strings)) == []


def test_the_scan_finds_gendered_words_and_passes_neutral_ones():
    assert gendered_words("Ask your husband; él sabe.") == ["husband", "él"]
    assert gendered_words("the shell; tu pareja; el enlace; cuéntale; ellipsis; hereafter") == []
