"""Answering one response: its pages, its progress, and saving a single answer safely.

Everything a partner sees while answering is built from the instrument's definition (already
loaded with the response) and the response's own answers, so a page costs few queries and the
autosave endpoint costs three: the session, the response, and one upsert.
"""

import random
from dataclasses import dataclass, field

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from . import loader, scoring, translations
from .models import Answer, Instrument, Item, Response

DECLINED = "declined"  # the form value for "Prefer not to answer"; stored as NULL
MAX_SEQ = 2**31 - 1  # Answer.seq is a 32-bit column on PostgreSQL


@dataclass(frozen=True)
class ItemRule:
    """What a save needs to know about one item, without a query."""

    id: int
    section: str
    scale_min: int
    scale_max: int


_rules_cache: dict[int, dict[str, ItemRule]] = {}


def item_rules(instrument_id):
    """{item code: ItemRule} of one instrument version, cached in this process.

    A published instrument version never changes (the loader refuses), so the cache never
    needs invalidating; a new version is a new instrument id.
    """
    rules = _rules_cache.get(instrument_id)
    if rules is None:
        rules = {
            code: ItemRule(pk, section, lo, hi)
            for pk, code, section, lo, hi in Item.objects.filter(instrument_id=instrument_id).values_list(
                "pk", "code", "section", "scale_min", "scale_max"
            )
        }
        if rules:
            _rules_cache[instrument_id] = rules
    return rules


_definition_cache: dict[int, dict] = {}


def definition(instrument_id, language=None):
    """The instrument's definition (sections, scales, domains), cached in this process like item_rules.

    With a ``language``, its texts are in that language when the version has a translation into it
    (`assessments.translations`); ids, scales and keying are the original's either way.
    """
    found = _definition_cache.get(instrument_id)
    if found is None:
        found = _definition_cache[instrument_id] = Instrument.objects.get(pk=instrument_id).definition
    if language is None or translations.candidates(language)[-1] == loader.base_language(found):
        return found
    return translations.texts_by_id(instrument_id, found, language)


def language_of(response):
    """The language ``response`` is (being) answered in: its own once chosen, else its partner's."""
    return response.language or response.partner.language


def sequenced_upsert_sql(model, columns):
    """SQL storing one row of ``model`` per (response, item) with ``columns``, as every autosave does.

    A save lands only when its sequence number is newer than the stored one. A repeat of the
    same save (same seq, same values: a retry whose first reply was lost) also "lands", so a
    retry is told it succeeded; anything older changes nothing. Nothing lands once the
    response is submitted: on PostgreSQL the share lock makes a save racing a submit wait for
    it (or the submit wait for the save), so a score always matches the stored answers; SQLite
    runs one writer at a time anyway. PostgreSQL and SQLite (3.39+) both speak ON CONFLICT ...
    DO UPDATE ... WHERE, IS NOT DISTINCT FROM and RETURNING. Parameters: response id, item id,
    each column's value, seq, updated_at, response id.
    """
    table = connection.ops.quote_name(model._meta.db_table)
    responses = connection.ops.quote_name(Response._meta.db_table)
    lock = " FOR SHARE" if connection.vendor == "postgresql" else ""
    names = ", ".join(columns)
    slots = ", ".join(["%s"] * (len(columns) + 4))
    updates = ", ".join(f"{c} = excluded.{c}" for c in (*columns, "seq", "updated_at"))
    same = " AND ".join(f"{table}.{c} IS NOT DISTINCT FROM excluded.{c}" for c in columns)
    # The only interpolations are the models' own quoted table names, their column names and the
    # lock clause.
    return (
        f"INSERT INTO {table} (response_id, item_id, {names}, seq, updated_at) "  # noqa: S608
        f"SELECT {slots} "
        f"WHERE (SELECT submitted_at FROM {responses} WHERE id = %s{lock}) IS NULL "
        f"ON CONFLICT (response_id, item_id) DO UPDATE SET {updates} "
        f"WHERE {table}.seq < excluded.seq OR ({table}.seq = excluded.seq AND {same}) "
        "RETURNING seq"
    )


def save_answer(*, response_id, item_id, value, seq, now=None):
    """Store one answer unless a newer one (higher seq) is stored or the response is submitted.

    One query. value None means "Prefer not to answer". Returns True when the answer is now
    stored, False when it was refused. Django's bulk_create(update_conflicts=True) cannot add
    the WHERE clauses that make this safe, hence the SQL.
    """
    now = connection.ops.adapt_datetimefield_value(now or timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(sequenced_upsert_sql(Answer, ["value"]), [response_id, item_id, value, seq, now, response_id])
        return cursor.fetchone() is not None


def lock_for_safety(response_id):
    """Lock one response row against other writers (not against readers) until the transaction ends.

    A safety save may write the response (its safety level) after its upsert took a share lock on
    it; taking the write lock first makes a second safety save of the same response wait instead
    of deadlocking with the first. One query.
    """
    list(Response.objects.select_for_update(no_key=True).filter(pk=response_id).values_list("pk"))


def stored_answers(response):
    """{item code: (value, seq)} of one response, in one query."""
    return {code: (value, seq) for code, value, seq in response.answers.values_list("item__code", "value", "seq")}


@dataclass
class Question:
    code: str
    text: str
    choices: list  # [(form value, label)], "Prefer not to answer" last
    value: str | None = None  # the chosen form value, or None when unanswered
    seq: int = 0
    error: str = ""
    # "I'd like to talk about this" (assessments/talk.py attaches the stored flag).
    talk: bool = False
    note: str = ""
    talk_seq: int = 0
    note_error: str = ""

    @property
    def answered(self):
        return self.value is not None


@dataclass
class Page:
    """One section of the instrument as one partner sees it."""

    index: int  # 1-based, as in the URL
    key: str
    title: str
    intro: str
    private: bool
    questions: list = field(default_factory=list)

    @property
    def answered(self):
        return sum(q.answered for q in self.questions)

    @property
    def complete(self):
        return self.answered == len(self.questions)

    @property
    def has_safety(self):
        return self.key == "safety"


def form_value(value):
    return DECLINED if value is None else str(value)


def pages(response, answers=None):
    """Every section of the response's instrument as a Page, items in this partner's order.

    Sections marked shuffle are shuffled with the response's order_seed, so a partner sees the
    same order on every visit and every device, and the two partners see different orders.
    """
    spec = definition(response.assignment.instrument_id, language_of(response))
    answers = stored_answers(response) if answers is None else answers
    scales = spec["scales"]
    result = []
    for index, section in enumerate(spec["sections"], start=1):
        items = list(section["items"])
        if section.get("shuffle"):
            random.Random(f"{response.order_seed}:{section['key']}").shuffle(items)
        page = Page(index, section["key"], section["title"], section.get("intro", ""), bool(section.get("private")))
        for item in items:
            scale = scales[item.get("scale", "agreement")]
            choices = [(str(v), scale["labels"][str(v)]) for v in range(int(scale["min"]), int(scale["max"]) + 1)]
            choices.append((DECLINED, _("Prefer not to answer")))
            stored = answers.get(item["id"])
            page.questions.append(
                Question(
                    code=item["id"],
                    text=item["text"],
                    choices=choices,
                    value=form_value(stored[0]) if stored else None,
                    seq=stored[1] if stored else 0,
                )
            )
        result.append(page)
    return result


def first_unanswered(all_pages):
    """The first page with an unanswered question, or None when everything is answered."""
    return next((p for p in all_pages if not p.complete), None)


def progress(all_pages):
    total = sum(len(p.questions) for p in all_pages)
    answered = sum(p.answered for p in all_pages)
    return {"answered": answered, "total": total, "percent": round(100 * answered / total) if total else 0}


@dataclass(frozen=True)
class Shortfall:
    """A domain that cannot be scored yet: answer `needed` more of its statements."""

    domain: str
    title: str
    needed: int
    page: Page


def shortfalls(response, all_pages):
    """Domains without enough answers to be scored (prefer-not-to-answer counts as missing)."""
    spec = definition(response.assignment.instrument_id, language_of(response))
    titles = {d["key"]: d["title"] for d in spec["domains"]}
    specs = scoring.items_from_instrument(spec)
    values = {q.code: (None if q.value in (None, DECLINED) else int(q.value)) for p in all_pages for q in p.questions}
    page_of = {q.code: p for p in all_pages for q in p.questions}
    result = []
    for key in scoring.scored_domains(specs):
        items = [s for s in specs if s.scored and s.domain == key]
        answered = sum(values.get(s.id) is not None for s in items)
        need = scoring.min_answered(len(items)) - answered
        if need > 0:
            result.append(Shortfall(key, titles.get(key, key), need, page_of[items[0].id]))
    return result


def needs_support(response):
    return response.is_safety_raised
