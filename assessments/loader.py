"""Load instrument definitions from assessments/instruments/*.json into the database.

Run after every migrate (post_migrate) and by `manage.py load_instruments`. Loading is
idempotent; loading a file that differs from an already-published version fails loudly and
names what changed, because stored answers refer to the published wording.

`<slug>-v<N>.json` is an instrument version; `<slug>-v<N>.<language>.json` beside it is that
version's texts in another language (a translation), loaded after the instruments and just as
immutable.
"""

import hashlib
import json
import re
from pathlib import Path

from django.db import connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.dispatch import Signal

from . import scoring
from .models import Instrument, InstrumentTranslation, Item

# Sent when a translation is stored or its status moves, so caches of translated texts forget it.
translation_loaded = Signal()

INSTRUMENTS_DIR = Path(__file__).resolve().parent / "instruments"
ITEM_FIELDS = (
    *("section", "domain", "text", "reverse_keyed", "scored", "scale", "scale_min", "scale_max", "predicts"),
    *("safety_code", "position"),
)


class InstrumentError(Exception):
    """A definition file is malformed or would change a published version."""


def checksum(definition):
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()


def scoring_key(definition):
    """A hash of everything a score depends on: equal keys mean the scores are comparable.

    Covers the scored items (id, domain, reverse keying, scale range), the domains, the norms
    and the scoring rules' version; leaves out wording, order, sections, remedies and unscored
    items, which change no number. So a reworded version keeps its predecessor's key, and
    reliable change can be computed across the two.
    """
    items = sorted(
        [r["code"], r["domain"], r["reverse_keyed"], r["scale_min"], r["scale_max"]]
        for r in item_rows(definition)
        if r["scored"]
    )
    domains = sorted([d["key"], d.get("kind", "")] for d in definition.get("domains", []))
    norms = {k: [float(n["sd"]), float(n["alpha"])] for k, n in definition.get("norms", {}).items()}
    basis = {"items": items, "domains": domains, "norms": norms, "scoring_version": scoring.SCORING_VERSION}
    return checksum(basis)


def item_rows(definition):
    """Flatten the file's sections into the Item fields, validating as we go."""
    scales = definition.get("scales") or {}
    domain_keys = {d["key"] for d in definition.get("domains", [])}
    rows, seen = [], set()
    position = 0
    for section in definition.get("sections", []):
        for raw in section.get("items", []):
            code = raw.get("id")
            if not code or code in seen:
                raise InstrumentError(f"item id {code!r} is missing or used twice")
            seen.add(code)
            scale = scales.get(raw.get("scale", "agreement"))
            if scale is None:
                raise InstrumentError(f"item {code}: unknown scale {raw.get('scale')!r}")
            domain = raw.get("domain") or ""
            if domain and domain not in domain_keys:
                raise InstrumentError(f"item {code}: unknown domain {domain!r}")
            if raw.get("scored", True) and not domain:
                raise InstrumentError(f"item {code}: a scored item needs a domain")
            if not (raw.get("text") or "").strip():
                raise InstrumentError(f"item {code}: the text is empty")
            position += 1
            rows.append(
                {
                    "code": code,
                    "section": section["key"],
                    "domain": domain,
                    "text": raw["text"].strip(),
                    "reverse_keyed": bool(raw.get("reverse", False)),
                    "scored": bool(raw.get("scored", True)),
                    "scale": raw.get("scale", "agreement"),
                    "scale_min": int(scale["min"]),
                    "scale_max": int(scale["max"]),
                    "predicts": raw.get("predicts") or "",
                    "safety_code": raw.get("safety_code") or "",
                    "position": position,
                }
            )
    by_code = {r["code"]: r for r in rows}
    for r in rows:
        target = by_code.get(r["predicts"]) if r["predicts"] else None
        if r["predicts"] and (target is None or not target["scored"] or target["domain"] in ("", "personal_skills")):
            raise InstrumentError(f"item {r['code']}: predicts {r['predicts']!r}, which is not a couple-domain item")
    if not rows:
        raise InstrumentError("the definition has no items")
    for key in domain_keys:
        if key not in definition.get("norms", {}):
            raise InstrumentError(f"domain {key!r} has no norms (sd and alpha)")
    return rows


def load_definition(definition):
    """Create the instrument version, or check that the stored one is identical. Returns it."""
    try:
        slug, version = definition["slug"], int(definition["version"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InstrumentError(f"the definition needs a slug and a whole-number version ({exc})") from None
    rows = item_rows(definition)
    digest = checksum(definition)
    key = scoring_key(definition)
    with transaction.atomic():
        existing = Instrument.objects.select_for_update().filter(slug=slug, version=version).first()
        if existing is None:
            instrument = Instrument.objects.create(
                slug=slug,
                version=version,
                title=definition["title"],
                definition=definition,
                checksum=digest,
                scoring_key=key,
            )
            Item.objects.bulk_create(Item(instrument=instrument, **row) for row in rows)
            return instrument
        if existing.checksum == digest:
            if existing.scoring_key != key:
                # The file is unchanged, so the scoring rules' version moved (or the key is not
                # yet filled): the key is derived, and every version's key moves together.
                existing.scoring_key = key
                existing.save(update_fields=["scoring_key"])
            return existing
        stored = {i.code: i for i in existing.items.all()}
        changed = []
        for row in rows:
            item = stored.pop(row["code"], None)
            if item is None:
                changed.append(f"{row['code']} (added)")
            elif any(getattr(item, f) != row[f] for f in ITEM_FIELDS):
                fields = [f for f in ITEM_FIELDS if getattr(item, f) != row[f]]
                changed.append(f"{row['code']} ({', '.join(fields)} changed)")
        changed += [f"{code} (removed)" for code in stored]
        what = "items " + "; ".join(changed) if changed else "its sections, domains, norms or remedies"
        raise InstrumentError(
            f"{slug} version {version} is already published and cannot change: {what}. "
            f"Publish the new wording as version {version + 1} in a new file."
        )


def load_file(path):
    try:
        definition = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InstrumentError(f"{Path(path).name}: {exc}") from None
    return load_definition(definition)


def load_all(directory=INSTRUMENTS_DIR):
    """Load every instrument version in ``directory``, then every translation; returns the instruments."""
    paths = sorted(Path(directory).glob("*.json"))
    instruments = [load_file(p) for p in paths if len(p.suffixes) == 1]
    for path in paths:
        if len(path.suffixes) == 2:
            load_translation_file(path)
    return instruments


def load_after_migrate(sender, using="default", **kwargs):
    # Only once every assessments migration is applied: a migrate to an earlier state lacks the
    # columns and tables the loader writes, and skips loading.
    executor = MigrationExecutor(connections[using])
    if not executor.migration_plan(executor.loader.graph.leaf_nodes(sender.label)):
        load_all()


# --- Translations ---------------------------------------------------------------------------

LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
BASE_LANGUAGE = "en"  # the language of an instrument file that does not name one
TRANSLATION_META = ("slug", "version", "language", "status", "published")
TRANSLATED_PARTS = ("title", "scales", "sections", "domains", "remedies", "items")


def base_language(definition):
    return definition.get("language") or BASE_LANGUAGE


def texts_of_instrument(definition):
    """Every translatable text of an instrument definition, as {path: text}.

    Paths are what a translation file spells: ``title``, ``scales.agreement.1``,
    ``sections.communication.intro``, ``domains.friendship.meaning``, ``remedies.tough_times.text``,
    ``items.COM1``.
    """
    texts = {"title": definition.get("title")}
    for name, scale in (definition.get("scales") or {}).items():
        for value, label in (scale.get("labels") or {}).items():
            texts[f"scales.{name}.{value}"] = label
    for section in definition.get("sections", []):
        texts[f"sections.{section['key']}.title"] = section.get("title")
        texts[f"sections.{section['key']}.intro"] = section.get("intro")
        for item in section.get("items", []):
            texts[f"items.{item['id']}"] = item.get("text")
    for domain in definition.get("domains", []):
        texts[f"domains.{domain['key']}.title"] = domain.get("title")
        texts[f"domains.{domain['key']}.meaning"] = domain.get("meaning")
    for key, remedy in (definition.get("remedies") or {}).items():
        texts[f"remedies.{key}.title"] = remedy.get("title")
        texts[f"remedies.{key}.text"] = remedy.get("text")
    # A text the original leaves out (a section without an introduction) is not translated either.
    return {path: text for path, text in texts.items() if text}


def texts_of_translation(translation):
    """A translation file's texts as {path: text}, in the same paths as ``texts_of_instrument``."""
    texts = {}

    def walk(path, value):
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{path}.{key}", inner)
        elif isinstance(value, str) and value.strip():
            texts[path] = value.strip()
        else:
            raise InstrumentError(f"{path} must be a non-empty text, not {value!r}")

    for part in TRANSLATED_PARTS:
        if part in translation:
            walk(part, translation[part])
    return texts


def _listed(paths):
    return ", ".join(sorted(paths))


def check_translation(translation, base):
    """Validate a translation against its base definition; returns its {path: text}.

    Every text of the base must be translated and nothing else: a missing or unknown item,
    section, scale label, domain or remedy is refused by name.
    """
    unknown_keys = set(translation) - set(TRANSLATION_META) - set(TRANSLATED_PARTS)
    if unknown_keys:
        raise InstrumentError(f"unknown fields {_listed(unknown_keys)}")
    language = translation.get("language")
    if not isinstance(language, str) or not LANGUAGE_CODE.match(language):
        raise InstrumentError(f"the language must be a lower-case code such as 'es' or 'pt-br', not {language!r}")
    if language == base_language(base):
        raise InstrumentError(f"{language!r} is the language the instrument is written in")
    if translation.get("status") not in InstrumentTranslation.Status.values:
        allowed = " or ".join(repr(s) for s in InstrumentTranslation.Status.values)
        raise InstrumentError(f"the status must be {allowed}, not {translation.get('status')!r}")
    texts = texts_of_translation(translation)
    expected = texts_of_instrument(base)
    missing, unknown = set(expected) - set(texts), set(texts) - set(expected)
    problems = []
    if missing:
        problems.append(f"missing {_listed(missing)}")
    if unknown:
        problems.append(f"not in the instrument {_listed(unknown)}")
    if problems:
        raise InstrumentError("; ".join(problems))
    return texts


def translation_checksum(translation):
    # The status is left out: it records what is known about the texts (validated or not) and
    # may move forward without the texts changing.
    return checksum({k: v for k, v in translation.items() if k != "status"})


def load_translation(translation):
    """Store a translation of a loaded instrument version, or check that the stored one is identical."""
    try:
        slug, version = translation["slug"], int(translation["version"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InstrumentError(f"the translation needs a slug and a whole-number version ({exc})") from None
    name = f"{slug}-v{version}.{translation.get('language')}"
    instrument = Instrument.objects.filter(slug=slug, version=version).first()
    if instrument is None:
        raise InstrumentError(f"{name}: there is no {slug} version {version} to translate")
    try:
        texts = check_translation(translation, instrument.definition)
    except InstrumentError as exc:
        raise InstrumentError(f"{name}: {exc}") from None
    digest = translation_checksum(translation)
    language, status = translation["language"], translation["status"]
    with transaction.atomic():
        existing = (
            InstrumentTranslation.objects.select_for_update().filter(instrument=instrument, language=language).first()
        )
        if existing is None:
            stored = InstrumentTranslation.objects.create(
                instrument=instrument, language=language, definition=translation, checksum=digest, status=status
            )
        elif existing.checksum == digest:
            if existing.status == status:
                return existing
            existing.status, existing.definition = status, translation
            existing.save(update_fields=["status", "definition"])
            stored = existing
        else:
            before = texts_of_translation(existing.definition)
            changed = {p for p in set(before) | set(texts) if before.get(p) != texts.get(p)}
            changed |= {k for k in ("published",) if existing.definition.get(k) != translation.get(k)}
            raise InstrumentError(
                f"{name} is already published and cannot change: {_listed(changed) or 'its metadata'} changed. "
                "Publish a new wording as a new instrument version, with its own translation file."
            )
    translation_loaded.send(sender=InstrumentTranslation, translation=stored)
    return stored


def load_translation_file(path):
    path = Path(path)
    try:
        translation = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InstrumentError(f"{path.name}: {exc}") from None
    if not isinstance(translation, dict):
        raise InstrumentError(f"{path.name}: a translation is a JSON object")
    expected = f"{translation.get('slug')}-v{translation.get('version')}.{translation.get('language')}.json"
    if path.name != expected:
        raise InstrumentError(f"{path.name}: its slug, version and language say it should be named {expected}")
    return load_translation(translation)
