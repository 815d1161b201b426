"""'I'd like to talk about this': a partner's flag and private note on one item, for the counselor only.

Saved like an answer (assessments/answering.py): one upsert that lands only when its sequence number
is newer than the stored one and the response is not submitted, from the autosave endpoint or from
the section form without JavaScript. The counselor's comparison lists the wanted ones first.
"""

from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from practice import prepared

from . import answering
from .models import TalkFlag

NOTE_MAX = TalkFlag.NOTE_MAX


def save_flag(*, response_id, item_id, wanted, note, seq, now=None):
    """Store one flag unless a newer save is stored or the response is submitted. True when stored."""
    now = connection.ops.adapt_datetimefield_value(now or timezone.now())
    with connection.cursor() as cursor:
        sql = answering.sequenced_upsert_sql(TalkFlag, ["wanted", "note"])  # the rules of an answer's save
        cursor.execute(sql, [response_id, item_id, bool(wanted), note, seq, now, response_id])
        return cursor.fetchone() is not None


def stored_flags(response):
    """{item code: (wanted, note, seq)} of one response, in one query."""
    rows = response.talk_flags.values_list("item__code", "wanted", "note", "seq")
    return {code: (wanted, note, seq) for code, wanted, note, seq in rows}


def attach(all_pages, flags):
    """Put each stored flag on its question (answering.Question.talk, .note, .talk_seq)."""
    for page in all_pages:
        for q in page.questions:
            wanted, note, seq = flags.get(q.code, (False, "", 0))
            q.talk, q.note, q.talk_seq = wanted, note, seq


@dataclass(frozen=True)
class ForSession:
    """One item a partner would like to talk about, as the counselor's comparison lists it."""

    position: str
    name: str
    code: str
    text: str
    section: str
    note: str


_WANTED = prepared.Query(
    lambda assignment: (
        TalkFlag.objects.filter(response__assignment=assignment, wanted=True)
        .select_related("item")
        .order_by("item__position", "pk")
    ),
    "assignment",
)


def for_session(responses):
    """What the partners would like to talk about, partner A first, each in the instrument's order.

    ``responses`` is ``comparison.responses_by_position(assignment)``; one query.
    """
    by_id = {r.pk: r for r in responses.values()}
    if not by_id:
        return []
    # The responses are one administration's: its flags, by a statement compiled once per process.
    rows = _WANTED.all(assignment=next(iter(by_id.values())).assignment_id)
    result = [
        ForSession(
            position=by_id[f.response_id].partner.position,
            name=by_id[f.response_id].partner.name,
            code=f.item.code,
            text=f.item.text,
            section=f.item.section,
            note=f.note,
        )
        for f in rows
    ]
    return sorted(result, key=lambda entry: entry.position)  # stable: instrument order within a partner
