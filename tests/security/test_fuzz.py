"""Fuzzing every form: random, oversized, wrong-typed and missing fields, tampered ids.

Every MATRIX row that takes POST is fuzzed here (or listed in NOT_FUZZED with the reason). To add
an endpoint, add one line to FUZZ: the party that posts, and its form's fields with their kind
(see KINDS). `prime` names a step from PRIMERS that puts the party where the form is reachable.

For each endpoint hypothesis sends MAX_EXAMPLES posts (deterministic: derandomize=True), each in
a savepoint that is rolled back, and checks: never a 500, and no other party's data changed.
"""

import os
from dataclasses import dataclass, field

import pytest
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assessments.models import Answer, Assignment, Response, ResponseLink
from clients.models import Couple, Partner
from practice.models import Membership, Practice, User

from . import matrix
from .matrix import MatrixWorld
from .test_matrix import PATTERNS, client_as

# Examples per endpoint: 12 in `make test` (the same 12 every run: derandomize), which keeps the
# 111 fuzzed endpoints to about two minutes on two cores; FUZZ_EXAMPLES=200 for a deeper run. The
# query-string fuzz also tries every QUERY_VALUES edge on every page, whatever this number.
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))


@dataclass(frozen=True)
class Fuzz:
    party: str
    fields: dict = field(default_factory=dict)  # form field -> kind (KINDS)
    prime: str = ""  # a PRIMERS step run before each post
    acts_for: str = ""  # whose data the post may change, when not the party's own (a reset link's owner)
    # Tables (others_data keys) in which an admin's post may change rows of the admin's OWN
    # practice (a role change, a transfer, a deletion); other practices' rows must never change.
    may_change: tuple = ()


NAME = "text"
EMAIL = "email"
CODE = "code"
PASSWORD = "password"

FUZZ = {
    "login": Fuzz("anonymous", {"username": EMAIL, "password": PASSWORD, "next": "text"}),
    "logout": Fuzz("counselor", {"next": "text"}),
    "password_reset": Fuzz("anonymous", {"email": EMAIL}),
    "password_reset_confirm": Fuzz(
        "anonymous", {"new_password1": PASSWORD, "new_password2": PASSWORD}, prime="reset_link", acts_for="owner"
    ),
    "two_factor_setup": Fuzz("counselor", {"code": CODE, "next": "text"}),
    "two_factor_verify": Fuzz("counselor", {"code": CODE, "next": "text"}, prime="enrolled"),
    "two_factor_recovery_codes": Fuzz("counselor", {}, prime="verified"),
    "clients:couple_create": Fuzz(
        "counselor",
        {
            "label": NAME,
            "a_first_name": NAME,
            "a_last_name": NAME,
            "a_email": EMAIL,
            "b_first_name": NAME,
            "b_last_name": NAME,
            "b_email": EMAIL,
        },
    ),
    "practice:invite": Fuzz("admin", {"email": EMAIL, "role": "text"}),
    "practice:invitation_revoke": Fuzz("admin", {}),
    "practice:invitation_accept": Fuzz(
        "anonymous", {"full_name": NAME, "password1": PASSWORD, "password2": PASSWORD}, may_change=("users",)
    ),
    "practice:member_role": Fuzz("admin", {"role": "text"}, may_change=("memberships",)),
    "practice:member_deactivate": Fuzz("admin", {}, may_change=("users",)),
    "practice:member_reactivate": Fuzz("admin", {}, may_change=("users",)),
    "clients:transfer": Fuzz(
        "admin", {"to": "text", "all_couples": "text", "couples": "text"}, may_change=("couples",)
    ),
    "clients:couple_delete": Fuzz(
        "admin", {"confirm": NAME}, may_change=("couples", "partners", "assignments", "responses", "links", "answers")
    ),
    "practice:settings": Fuzz(
        "admin",
        {
            "name": NAME,
            "time_zone": "text",
            "default_due_days": "text",
            "link_grace_days": "text",
            "reminder_after_days": "text",
            "reminder_before_due_days": "text",
            "reminder_overdue_notice": "text",
            "quiet_hours_start": "text",
            "quiet_hours_end": "text",
            "require_two_factor": "text",
        },
        may_change=("practices",),
    ),
    "assessments:exports": Fuzz(
        "admin", {"kind": "text", "format": "text", "start": "text", "end": "text", "counselor": "text"}
    ),
    "clients:couple_notes": Fuzz("counselor", {"notes": NAME}),
    "clients:couple_archive": Fuzz("counselor", {"action": "text"}),
    "assessments:release": Fuzz("counselor", {"confirm_risk": "text"}),
    "assessments:withdraw": Fuzz("counselor", {}),
    "assessments:share_results": Fuzz("counselor", {}),
    "assessments:acknowledge_alert": Fuzz("counselor", {}),
    "assessments:end_access": Fuzz("counselor", {}),
    "assessments:answer_here": Fuzz("counselor", {}),
    "assessments:this_device": Fuzz("counselor", {}),
    "assessments:device": Fuzz("counselor", {"action": "text"}),
    "assessments:plan": Fuzz(
        "counselor",
        {
            "every_weeks": "text",
            "administrations": "text",
            "until_stopped": "text",
            "start_on": "text",
            "due_days": "text",
        },
    ),
    "assessments:plan_action": Fuzz("counselor", {"action": "text"}),
    "assessments:inbox_mark": Fuzz("counselor", {"how": "text"}),
    "assessments:here": Fuzz("anonymous", {"code": "text"}),
    "assessments:here_end": Fuzz("anonymous", {}),
    "assessments:exit": Fuzz("partner_a", {"how": "text"}),
    "assessments:welcome": Fuzz("partner_a", {}),
    "assessments:consent": Fuzz("partner_a", {"understood": "text", "share_summary": "text"}),
    "assessments:section": Fuzz("partner_a", {"item-COM1": "text", "item-COM2": "text", "seq-COM1": "text"}),
    "assessments:save_answer": Fuzz("partner_a", {"item": "text", "value": "text", "seq": "text"}),
    "assessments:save_talk": Fuzz("partner_a", {"item": "text", "talk": "text", "note": NAME, "seq": "text"}),
    "assessments:submit": Fuzz("partner_a", {}),
    "assessments:partner_language": Fuzz("partner_a", {"language": "text", "next": "text"}),
    "assessments:assign": Fuzz("counselor", {"due_date": "text"}),
    "assessments:cancel": Fuzz("counselor", {}),
    "assessments:resend": Fuzz("counselor", {}),
    "assessments:reissue": Fuzz("counselor", {}),
    "assessments:remind_now": Fuzz("counselor", {}),
    "assessments:pause_reminders": Fuzz("counselor", {"paused": "text"}),
    "assessments:retry_message": Fuzz("counselor", {"back": "text"}),
    "assessments:unsubscribe": Fuzz("anonymous", {}, may_change=("partners",)),
}

NOT_FUZZED = {
    "admin:*": "Django's own admin: operators only, every party here is refused before any form.",
}


# --- Steps that make a form reachable -------------------------------------------------------


def _enrol(world, client):
    device = TOTPDevice.objects.create(user=world.owner, name="Authenticator app", confirmed=True)
    static = StaticDevice.objects.create(user=world.owner, name="Recovery codes", confirmed=True)
    StaticToken.objects.create(device=static, token="abcd2345")
    session = client.session
    session["two_factor_enrolled"] = True
    session.save()
    return device


def _verified(world, client):
    device = _enrol(world, client)
    request = type("R", (), {"user": world.owner, "session": client.session})()
    otp_login(request, device)
    request.session.save()


def _reset_link(world, client):
    url = reverse("password_reset_confirm", args=[world.owner_uidb64, world.reset_token])
    response = client.get(url)
    assert response.status_code == 302
    return response["Location"]  # .../set-password/: the form's own address


PRIMERS = {"enrolled": _enrol, "verified": _verified, "reset_link": _reset_link}


# --- Values ---------------------------------------------------------------------------------

HOSTILE = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "0",
    "-1",
    "99999999999999999999999",
    "1e309",
    "NaN",
    "null",
    "[]",
    "{}",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "../../etc/passwd",
    "%00",
    "\u202e\u0000\ufeff",
    "https://evil.example/",
    "//evil.example",
]

MISSING = object()


def oversized():
    return st.builds(lambda n, c: c * n, st.integers(300, 60_000), st.sampled_from(["a", "é", "中", "<", "'", "9"]))


def tampered_ids(world):
    """Primary keys of things this party must never touch."""
    return [
        world.other_couple.pk,
        world.outsider_couple.pk,
        world.other_response_a.pk,
        world.response_b.pk,
        world.other_practice.pk,
        world.outsider.pk,
        world.admin.pk,
        2**31 - 1,
        2**63,
    ]


KINDS = {
    NAME: st.text(min_size=1, max_size=60),
    EMAIL: st.emails(),
    CODE: st.from_regex(r"[0-9]{6}|[a-z2-7]{8}", fullmatch=True),
    PASSWORD: st.text(min_size=0, max_size=80),
}


def value(kind, world):
    valid = KINDS.get(kind, st.text(max_size=60))
    wrong = st.one_of(
        st.sampled_from(HOSTILE),
        oversized(),
        st.sampled_from(tampered_ids(world)).map(str),
        st.text(max_size=200),
        st.lists(valid, min_size=2, max_size=3),  # a field sent several times
    )
    return st.one_of(st.just(MISSING), valid, wrong)


EXTRA_FIELDS = ["pk", "id", "couple", "couple_pk", "practice", "counselor", "role", "is_staff", "response_id", "user"]


def payloads(spec, world):
    fields = {name: value(kind, world) for name, kind in spec.fields.items()}
    extra = st.dictionaries(st.sampled_from(EXTRA_FIELDS), st.sampled_from(tampered_ids(world)).map(str), max_size=3)
    return st.tuples(st.fixed_dictionaries(fields), extra).map(
        lambda pair: {k: v for k, v in {**pair[0], **pair[1]}.items() if v is not MISSING}
    )


def urls(world, row):
    """The row's own URL, or the same pattern with an argument swapped for someone else's id."""
    pattern = PATTERNS[row.name]
    own = matrix.url_for(world, row, pattern)
    if not pattern.arg_names:
        return st.just(own)

    def swapped(pair):
        name, other = pair
        kwargs = {a: world.resolve(row.args.get(a) or matrix.ARG_SOURCES[a]) for a in pattern.arg_names}
        kwargs[name] = other
        try:
            return reverse(row.name, kwargs=kwargs)
        except NoReverseMatch:
            return own

    return st.one_of(
        st.just(own),
        st.tuples(st.sampled_from(pattern.arg_names), st.sampled_from(tampered_ids(world))).map(swapped),
    )


# --- What must not change -------------------------------------------------------------------


def others_data(world, actor, own_response=None, may_change=(), practice=None):
    """Everything that belongs to parties other than `actor` (a staff user) or the partner whose
    response is `own_response`, as plain values. Tables named in `may_change` leave out the rows
    of `practice` (the acting admin's own)."""
    own_couples = Couple.objects.filter(counselor=actor) if actor else Couple.objects.none()
    mine = {"pk": own_response.pk} if own_response else {"pk__in": []}
    responses = Response.objects.exclude(assignment__couple__in=own_couples).exclude(**mine)
    users = User.objects.exclude(pk=actor.pk) if actor else User.objects.all()
    data = _others(own_couples, responses, users, actor)
    if practice is not None:
        in_practice = {
            "practices": Practice.objects.filter(pk=practice.pk),
            "users": User.objects.filter(membership__practice=practice),
            "memberships": Membership.objects.filter(practice=practice),
            "couples": Couple.objects.filter(practice=practice),
            "partners": Partner.objects.filter(couple__practice=practice),
            "assignments": Assignment.objects.filter(couple__practice=practice),
            "responses": Response.objects.filter(assignment__couple__practice=practice),
            "links": ResponseLink.objects.filter(response__assignment__couple__practice=practice),
            "answers": Answer.objects.filter(response__assignment__couple__practice=practice),
        }
        for key in may_change:
            own = set(in_practice[key].values_list("pk", flat=True))
            data[key] = [row for row in data[key] if row["pk" if "pk" in row else "id"] not in own]
    return data


def _others(own_couples, responses, users, actor):
    return {
        "practices": list(Practice.objects.order_by("pk").values()),
        "users": list(
            users.order_by("pk").values("pk", "email", "password", "is_active", "is_staff", "is_superuser", "full_name")
        ),
        "memberships": list(Membership.objects.order_by("pk").values()),
        "couples": list(Couple.objects.exclude(pk__in=own_couples).order_by("pk").values()),
        "partners": list(Partner.objects.exclude(couple__in=own_couples).order_by("pk").values()),
        "assignments": list(Assignment.objects.exclude(couple__in=own_couples).order_by("pk").values()),
        "responses": list(responses.order_by("pk").values()),
        "links": list(ResponseLink.objects.filter(response__in=responses).order_by("pk").values()),
        "answers": list(Answer.objects.filter(response__in=responses).order_by("pk").values()),
        "devices": list(
            TOTPDevice.objects.exclude(user=actor).order_by("pk").values("user_id", "key", "confirmed")
            if actor
            else TOTPDevice.objects.order_by("pk").values("user_id", "key", "confirmed")
        ),
    }


# --- The tests ------------------------------------------------------------------------------


def post_rows():
    return [row for row in matrix.rows() if "POST" in row.methods]


def test_every_post_endpoint_is_fuzzed_or_says_why_not():
    missing = [r.name for r in post_rows() if r.name not in FUZZ and r.name not in NOT_FUZZED]
    assert not missing, (
        f"POST endpoints without a fuzz entry: {missing}. Add each to FUZZ in tests/security/test_fuzz.py, "
        'e.g.  "clients:couple_edit": Fuzz("counselor", {"label": NAME}),'
    )
    stale = [name for name in FUZZ if name not in {r.name for r in post_rows()}]
    assert not stale, f"FUZZ entries for URLs the matrix does not list as taking POST: {stale}"


@pytest.mark.parametrize("name", sorted(FUZZ), ids=str)
def test_random_and_hostile_posts_never_crash_or_touch_other_parties_data(name, db):
    world = MatrixWorld()
    spec = FUZZ[name]
    row = next(r for r in matrix.rows() if r.name == name)
    actor = getattr(world, spec.acts_for) if spec.acts_for else world.staff(spec.party)
    own_response = {"partner_a": world.response_a, "partner_b": world.response_b}.get(spec.party)
    if spec.party == "other_partner":
        own_response = world.other_response_a

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=payloads(spec, world), url=urls(world, row), htmx=st.booleans())
    def post(data, url, htmx):
        with transaction.atomic():
            client = client_as(world, spec.party)
            if spec.prime:
                url = PRIMERS[spec.prime](world, client) or url
            scope = {"may_change": spec.may_change, "practice": world.practice if spec.may_change else None}
            before = others_data(world, actor, own_response, **scope)
            headers = {"HX-Request": "true"} if htmx else {}
            response = client.post(url, data, headers=headers)
            after = others_data(world, actor, own_response, **scope)
            transaction.set_rollback(True)
        assert response.status_code < 500, f"{name} {url} {data!r:.300}: {response.status_code}"
        changed = [key for key in before if before[key] != after[key]]
        assert not changed, f"{name} {url} {data!r:.300} changed other parties' {changed}"

    post()


# --- Query strings on every staff page ------------------------------------------------------

# Every name a staff page reads from its query string, and a few it does not.
QUERY_NAMES = [
    "start",
    "end",
    "page",
    "q",
    "status",
    "sort",
    "category",
    "couple",
    "action",
    "actor",
    "next",
    "kind",
    "format",
    "counselor",
    "assignment",
    "deidentified",
    "pk",
]

QUERY_VALUES = [
    # Dates at and past the edges of Python's range, and of the site's.
    "9999-12-31",
    "0001-01-01",
    "0000-00-00",
    "10000-01-01",
    "1899-12-31",
    "2200-01-01",
    "2026-02-30",
    "2026-13-01",
    "-2026-01-01",
    # Unicode digits: isdigit() is true for them, int() refuses some of them.
    "²",
    "١٢٣",
    "２０２６-０１-０１",
    "٠",
    "𝟗",
    # NUL and other control characters.
    "\x00",
    "2026-01-01\x00",
    "\r\n",
    str(2**63),
    str(-(2**63) - 1),
]

# Pages that render a PDF get fewer tries: each is a second of layout.
SLOW_PAGES = {"assessments:comparison_pdf": 4}


def staff_get_rows():
    """(row, party) for every page a staff member may open by GET: the couple's counselor, or
    failing that the practice admin."""
    found = []
    for row in matrix.rows():
        if "GET" not in row.methods or row.name.endswith(":*"):
            continue
        for party in ("counselor", "admin"):
            if row.outcome(party, "GET") == "ok":
                found.append((row, party))
                break
    return found


def query_strings(world):
    hostile = st.one_of(
        st.sampled_from(QUERY_VALUES),
        st.sampled_from(HOSTILE),
        oversized(),
        st.sampled_from(tampered_ids(world)).map(str),
        st.text(max_size=40),
    )
    value = st.one_of(hostile, st.lists(hostile, min_size=2, max_size=3))
    return st.dictionaries(st.sampled_from(QUERY_NAMES), value, min_size=1, max_size=5)


def test_every_staff_page_is_in_the_query_string_fuzz():
    pages = {row.name for row, _ in staff_get_rows()}
    for expected in ("assessments:caseload", "assessments:statistics", "practice:audit_log", "clients:transfer"):
        assert expected in pages


@pytest.mark.parametrize(("row", "party"), staff_get_rows(), ids=lambda v: getattr(v, "name", v))
def test_hostile_query_strings_never_crash_a_staff_page(row, party, db):
    world = MatrixWorld()
    url = matrix.url_for(world, row, PATTERNS[row.name])

    def request(query, htmx):
        with transaction.atomic():
            client = client_as(world, party)
            headers = {"HX-Request": "true", "HX-Current-URL": "http://testserver/"} if htmx else {}
            response = client.get(url, query, headers=headers)
            transaction.set_rollback(True)
        return response

    # Every edge value in every name at once, plain and as htmx; then random mixtures.
    for n, edge in enumerate(QUERY_VALUES[: SLOW_PAGES.get(row.name, len(QUERY_VALUES))]):
        query = dict.fromkeys(QUERY_NAMES, edge)
        response = request(query, htmx=bool(n % 2))
        assert response.status_code < 500, f"{row.name} {url} every name={edge!r}: {response.status_code}"

    @settings(
        max_examples=SLOW_PAGES.get(row.name, MAX_EXAMPLES),
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(query=query_strings(world), htmx=st.booleans())
    def get(query, htmx):
        response = request(query, htmx)
        assert response.status_code < 500, f"{row.name} {url}?{query!r:.300}: {response.status_code}"

    get()
