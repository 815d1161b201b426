"""The shipped translation catalogues: complete, compiled, and current with the marked strings."""

import ast
import gettext
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = [code for code, _name in settings.LANGUAGES if code != "en"]
SOURCES = ("assessments", "clients", "practice", "connection_practice", "templates", "manage.py")


def catalogue(language):
    return ROOT / "locale" / language / "LC_MESSAGES" / "django.po"


def entries(po_path):
    """[(msgctxt, msgid, msgid_plural, [msgstr...], fuzzy)] of a .po file, the header left out."""
    found = []
    for block in po_path.read_text(encoding="utf-8").split("\n\n"):
        fields, current = {}, None
        fuzzy = any(line.startswith("#,") and "fuzzy" in line for line in block.splitlines())
        for line in block.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            match = re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) (".*")$', line)
            if match:
                current = match.group(1)
                fields[current] = ast.literal_eval(match.group(2))
            else:
                fields[current] += ast.literal_eval(line)
        if fields.get("msgid"):
            strs = [v for k, v in sorted(fields.items()) if k.startswith("msgstr")]
            found.append((fields.get("msgctxt"), fields["msgid"], fields.get("msgid_plural"), strs, fuzzy))
    return found


@pytest.mark.parametrize("language", SHIPPED)
def test_every_string_is_translated_and_none_is_fuzzy(language):
    found = entries(catalogue(language))
    assert len(found) > 100
    untranslated = [msgid for _c, msgid, _p, strs, _f in found if not all(strs)]
    fuzzy = [msgid for _c, msgid, _p, _s, is_fuzzy in found if is_fuzzy]
    assert untranslated == [] and fuzzy == []


@pytest.mark.parametrize("language", SHIPPED)
def test_the_committed_compiled_catalogue_matches_its_source(language):
    po = catalogue(language)
    with open(po.with_suffix(".mo"), "rb") as compiled:
        messages = gettext.GNUTranslations(compiled)._catalog  # type: ignore[attr-defined]
    for context, msgid, plural, strs, _fuzzy in entries(po):
        key = f"{context}\x04{msgid}" if context else msgid
        if plural:
            assert [messages[(key, n)] for n in range(len(strs))] == strs, f"recompile: {msgid!r} changed"
        else:
            assert messages[key] == strs[0], f"recompile (make messages): {msgid!r} changed"


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="makemessages needs GNU gettext (apt-get install gettext)")
@pytest.mark.parametrize("language", SHIPPED)
def test_makemessages_finds_no_string_missing_from_the_catalogue(language, tmp_path):
    """Extract the marked strings from a copy of the code, as `make messages` does, and compare."""
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    shutil.copytree(ROOT / "locale", tmp_path / "locale")
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", language, "--no-obsolete"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    extracted = {(c, m) for c, m, _p, _s, _f in entries(tmp_path / "locale" / language / "LC_MESSAGES" / "django.po")}
    committed = {(c, m) for c, m, _p, _s, _f in entries(catalogue(language))}
    assert sorted(extracted - committed, key=str) == [], "new strings: run `make messages` and translate them"
    assert sorted(committed - extracted, key=str) == [], "strings no longer used: run `make messages`"
    untranslated = [
        m
        for _c, m, _p, strs, _f in entries(tmp_path / "locale" / language / "LC_MESSAGES" / "django.po")
        if not all(strs)
    ]
    assert untranslated == []
