"""Load instrument definitions from assessments/instruments/*.json into the database.

Run after every migrate (post_migrate) and by `manage.py load_instruments`. Loading is
idempotent; loading a file that differs from an already-published version fails loudly and
names what changed, because stored answers refer to the published wording.
"""

import hashlib
import json
from pathlib import Path

from django.db import connections, transaction

INSTRUMENTS_DIR = Path(__file__).resolve().parent / "instruments"
ITEM_FIELDS = ("section", "domain", "text", "reverse_keyed", "scored", "scale", "scale_min", "scale_max", "predicts")
ITEM_FIELDS += ("safety_code", "position")


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
    from . import scoring

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
    from .models import Instrument, Item

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
    return [load_file(p) for p in sorted(Path(directory).glob("*.json"))]


def load_after_migrate(sender, using="default", **kwargs):
    from django.db.migrations.executor import MigrationExecutor

    # Only once every assessments migration is applied: a migrate to an earlier state lacks the
    # columns and tables the loader writes, and skips loading.
    executor = MigrationExecutor(connections[using])
    if not executor.migration_plan(executor.loader.graph.leaf_nodes(sender.label)):
        load_all()
