"""The permission matrix: every URL pattern, every party, the outcome each must get.

How to add a URL (one line): put a row in MATRIX below, in the same column order as PARTIES:

    "clients:export":                  ("GET", "login  login  login  login  ok     deny   deny   deny   deny"),

- key: the URL name as `reverse()` takes it ("namespace:name"); an included app that is checked as a
  whole (the Django admin) is written "namespace:*".
- methods: the methods the view accepts, space-separated ("GET", "POST", "GET POST"). Each declared
  method must give exactly the row's outcome; GET or POST when not declared must give 405, a 400,
  or the same (never more access than the declared method).
- outcomes: one per party, in PARTIES order (see OUTCOMES for the words).
- args (optional third item): how to fill the URL's arguments from the test world, as
  "name=attribute" pairs ("pk=assignment.pk index=0"). Arguments not named there are filled by
  their name from ARG_SOURCES (pk -> the couple, response_id -> partner A's response, ...).

Every request is made plain and as htmx, and never may any party get a 500.
"""

import re
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.tokens import default_token_generator
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from assessments.models import ExportJob, SafetyAlert
from assessments.reminders import unsubscribe_token
from practice.models import Invitation, Job
from tests.conftest import World, make_assignment, make_couple

# Column order of every outcome string.
PARTIES = (
    "anonymous",  # nobody signed in, no partner link opened
    "partner_a",  # partner A of the couple, through their personal link
    "partner_b",  # partner B of the same couple
    "other_partner",  # partner A of another couple (the colleague's) in the same practice
    "counselor",  # the couple's counselor
    "colleague",  # another counselor of the same practice
    "admin",  # the practice admin (not the couple's counselor)
    "outsider",  # a counselor of another practice
    "outsider_admin",  # the admin of another practice
)

OUTCOMES = {
    "ok": "let in: 2xx, a redirect that is not to sign-in or two-factor, or a 400 form error",
    "login": "sent to sign in: a redirect to the sign-in page (the site's or the Django admin's)",
    "deny": "refused without saying whether the object exists: 403 or 404",
    "gone": "410: an expired, replaced or cancelled link",
    "2fa": "sent to set up or enter a second factor first",
    "405": "method not allowed",
    "409": "conflict: the request cannot apply to who is signed in (e.g. an invitation while signed in)",
    "429": "sign-in paused (lockout)",
}

# Outcomes that refuse: a method the row does not declare may answer with these too.
REFUSALS = {"login", "deny", "gone", "2fa", "405", "409", "429"}

# Included URLconfs classified as one row ("namespace:*"), requested at their index.
PREFIXES = {"admin": "admin:index"}

# Arguments filled by name unless the row says otherwise: a dotted attribute of MatrixWorld, or a
# whole number.
ARG_SOURCES = {
    "pk": "couple.pk",
    "couple_pk": "couple.pk",
    "assignment_pk": "assignment.pk",
    "response_id": "response_a.pk",
    "response_pk": "response_a.pk",
    "token": "token_a",
    "uidb64": "owner_uidb64",
    "index": "0",
    "alert_pk": "alert.pk",
}

# fmt: off
MATRIX = {
    # URL name                         methods       anon   A      B      other  couns  colle  admin  outs   o-adm
    "home":                            ("GET",      "login  login  login  login  ok     ok     ok     ok     ok"),
    "healthz":                         ("GET",      "ok     ok     ok     ok     ok     ok     ok     ok     ok"),
    "readyz":                          ("GET",      "ok     ok     ok     ok     ok     ok     ok     ok     ok"),
    "login":                           ("GET POST", "ok     ok     ok     ok     ok     ok     ok     ok     ok"),
    "logout":                          ("POST",     "login  login  login  login  login  login  login  login  login"),
    "password_reset":                  ("GET POST", "ok     ok     ok     ok     ok     ok     ok     ok     ok"),
    "password_reset_done":             ("GET",      "ok     ok     ok     ok     ok     ok     ok     ok     ok"),
    "password_reset_confirm":          ("GET POST", "ok     ok     ok     ok     ok     ok     ok     ok     ok",
                                        "uidb64=owner_uidb64 token=reset_token"),
    "password_reset_complete":         ("GET",      "ok     ok     ok     ok     ok     ok     ok     ok     ok"),
    "two_factor_setup":                ("GET POST", "login  login  login  login  ok     ok     ok     ok     ok"),
    "two_factor_verify":               ("GET POST", "login  login  login  login  2fa    2fa    2fa    2fa    2fa"),
    "two_factor_recovery_codes":       ("GET POST", "login  login  login  login  2fa    2fa    2fa    2fa    2fa"),
    "keep_alive":                      ("GET",      "login  login  login  login  ok     ok     ok     ok     ok"),
    "practice:overview":               ("GET",      "login  login  login  login  deny   deny   ok     deny   ok"),
    "practice:invite":                 ("GET POST", "login  login  login  login  deny   deny   ok     deny   ok"),
    "practice:invitation_revoke":      ("POST",     "login  login  login  login  deny   deny   ok     deny   deny",
                                        "pk=invitation.pk"),
    "practice:invitation_accept":      ("GET POST", "ok     ok     ok     ok     409    409    409    409    409",
                                        "token=invitation_token"),
    "practice:member_role":            ("POST",     "login  login  login  login  deny   deny   ok     deny   deny",
                                        "pk=member.pk"),
    "practice:member_deactivate":      ("POST",     "login  login  login  login  deny   deny   ok     deny   deny",
                                        "pk=member.pk"),
    "practice:member_reactivate":      ("POST",     "login  login  login  login  deny   deny   ok     deny   deny",
                                        "pk=member.pk"),
    "clients:transfer":                ("GET POST", "login  login  login  login  deny   deny   ok     deny   deny",
                                        "pk=member.pk"),
    "clients:practice_couples":        ("GET",      "login  login  login  login  deny   deny   ok     deny   ok"),
    "assessments:couple_record":       ("GET",      "login  login  login  login  deny   deny   ok     deny   deny"),
    "clients:couple_delete":           ("GET POST", "login  login  login  login  deny   deny   ok     deny   deny"),
    "practice:settings":               ("GET POST", "login  login  login  login  deny   deny   ok     deny   ok"),
    "assessments:statistics":          ("GET",      "login  login  login  login  deny   deny   ok     deny   ok"),
    "assessments:exports":             ("GET POST", "login  login  login  login  deny   deny   ok     deny   ok"),
    "assessments:export_job":          ("GET",      "login  login  login  login  deny   deny   ok     deny   deny",
                                        "pk=export_job.pk"),
    "assessments:export_file":         ("GET",      "login  login  login  login  deny   deny   gone   deny   deny",
                                        "pk=export_job.pk"),
    "assessments:codebook":            ("GET",      "login  login  login  login  deny   deny   ok     deny   ok"),
    "practice:audit_log":              ("GET",      "login  login  login  login  deny   deny   ok     deny   ok"),
    "practice:audit_export":           ("GET",      "login  login  login  login  deny   deny   ok     deny   ok"),
    "assessments:remind_now":          ("POST",     "login  login  login  login  ok     deny   deny   deny   deny"),
    "assessments:pause_reminders":     ("POST",     "login  login  login  login  ok     deny   deny   deny   deny"),
    "assessments:unsubscribe":         ("GET POST", "ok     ok     ok     ok     ok     ok     ok     ok     ok",
                                        "token=unsubscribe_token"),
    "assessments:caseload":            ("GET",      "login  login  login  login  ok     ok     ok     ok     ok"),
    "assessments:inbox":               ("GET",      "login  login  login  login  ok     ok     ok     ok     ok"),
    "assessments:inbox_mark":          ("POST",     "login  login  login  login  ok     deny   deny   deny   deny",
                                        "kind=inbox_kind"),
    "clients:couple_create":           ("GET POST", "login  login  login  login  ok     ok     ok     ok     ok"),
    "assessments:couple":              ("GET",      "login  login  login  login  ok     deny   deny   deny   deny"),
    "clients:couple_notes":            ("POST",     "login  login  login  login  ok     deny   deny   deny   deny"),
    "clients:couple_archive":          ("POST",     "login  login  login  login  ok     deny   deny   deny   deny"),
    "assessments:comparison":          ("GET",      "login  login  login  login  ok     deny   deny   deny   deny"),
    "assessments:comparison_pdf":      ("GET",      "login  login  login  login  ok     deny   deny   deny   deny"),
    "assessments:release":             ("POST",     "login  login  login  login  ok     deny   deny   deny   deny"),
    "assessments:withdraw":            ("POST",     "login  login  login  login  ok     deny   deny   deny   deny"),
    "assessments:share_results":       ("POST",     "login  login  login  login  ok     deny   deny   deny   deny"),
    "assessments:acknowledge_alert":   ("POST",     "login  login  login  login  ok     deny   deny   deny   deny"),
    "assessments:end_access":          ("POST",     "login  login  login  login  ok     deny   deny   deny   deny"),
    "assessments:answer_here":         ("POST",     "login  login  login  login  ok     deny   deny   deny   deny"),
    "assessments:exit":                ("POST",     "ok     ok     ok     ok     ok     ok     ok     ok     ok"),
    "assessments:finished":            ("GET",      "ok     ok     ok     ok     ok     ok     ok     ok     ok"),
    "assessments:here":                ("GET POST", "ok     ok     ok     ok     ok     ok     ok     ok     ok"),
    "assessments:here_end":            ("POST",     "ok     ok     ok     ok     ok     ok     ok     ok     ok"),
    "assessments:shared_summary":      ("GET",      "deny   deny   deny   deny   deny   deny   deny   deny   deny"),
    "assessments:open_link":           ("GET",      "ok     ok     ok     ok     ok     ok     ok     ok     ok"),
    "assessments:welcome":             ("GET",      "deny   ok     deny   deny   deny   deny   deny   deny   deny"),
    "assessments:consent":             ("GET POST", "deny   ok     deny   deny   deny   deny   deny   deny   deny"),
    "assessments:section":             ("GET POST", "deny   ok     deny   deny   deny   deny   deny   deny   deny",
                                        "index=1"),
    "assessments:save_answer":         ("POST",     "deny   409    deny   deny   deny   deny   deny   deny   deny"),
    "assessments:save_talk":           ("POST",     "deny   409    deny   deny   deny   deny   deny   deny   deny"),
    "assessments:review":              ("GET",      "deny   ok     deny   deny   deny   deny   deny   deny   deny"),
    "assessments:submit":              ("POST",     "deny   ok     deny   deny   deny   deny   deny   deny   deny"),
    "assessments:results":             ("GET",      "deny   ok     deny   deny   deny   deny   deny   deny   deny"),
    "assessments:support":             ("GET",      "deny   ok     deny   deny   deny   deny   deny   deny   deny"),
    "assessments:assign":              ("GET POST", "login  login  login  login  ok     deny   deny   deny   deny"),
    "assessments:cancel":              ("POST",     "login  login  login  login  ok     deny   deny   deny   deny"),
    "assessments:resend":              ("POST",     "login  login  login  login  ok     deny   deny   deny   deny"),
    "assessments:reissue":             ("POST",     "login  login  login  login  ok     deny   deny   deny   deny"),
    "admin:*":                         ("GET",      "login  login  login  login  login  login  login  login  login"),
}
# fmt: on


@dataclass(frozen=True)
class Row:
    name: str
    methods: tuple
    expected: dict  # party -> outcome
    args: dict  # argument name -> source


def parse_row(name, spec):
    methods, outcomes, *rest = spec
    words = outcomes.split()
    if len(words) != len(PARTIES):
        raise ValueError(f"MATRIX[{name!r}] has {len(words)} outcomes; it needs {len(PARTIES)}: {' '.join(PARTIES)}")
    unknown = set(words) - set(OUTCOMES)
    if unknown:
        raise ValueError(f"MATRIX[{name!r}] uses unknown outcomes {sorted(unknown)}; choose from {sorted(OUTCOMES)}")
    args = dict(pair.split("=", 1) for pair in (rest[0].split() if rest else []))
    return Row(name, tuple(methods.split()), dict(zip(PARTIES, words, strict=True)), args)


def rows():
    return [parse_row(name, spec) for name, spec in MATRIX.items()]


# --- Walking the URLconf --------------------------------------------------------------------

ARG_NAME = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>")


@dataclass(frozen=True)
class Pattern:
    key: str  # the MATRIX key
    route: str  # the full route, for messages
    arg_names: tuple


def url_patterns(urlconf=None):
    """Every URL pattern of the URLconf, included ones flattened, PREFIXES as one entry each."""
    found = []

    def walk(patterns, prefix, namespace):
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                ns = ":".join(part for part in (namespace, entry.namespace) if part)
                if ns in PREFIXES:
                    found.append(Pattern(f"{ns}:*", route, ()))
                    continue
                walk(entry.url_patterns, route, ns)
            elif isinstance(entry, URLPattern):
                if entry.name:
                    key = f"{namespace}:{entry.name}" if namespace else entry.name
                else:
                    key = f"(unnamed) {route}"
                names = tuple(a or b for a, b in ARG_NAME.findall(route))
                found.append(Pattern(key, route, names))

    walk(get_resolver(urlconf).url_patterns, "", "")
    return found


def coverage_problems(urlconf=None):
    """Messages for every URL pattern missing from MATRIX and every row naming no pattern."""
    patterns = url_patterns(urlconf)
    keys = {p.key for p in patterns}
    problems = []
    for pattern in patterns:
        if pattern.key.startswith("(unnamed)"):
            problems.append(f"URL pattern {pattern.route!r} has no name: give it one, then classify it in MATRIX.")
        elif pattern.key not in MATRIX:
            args = [a for a in pattern.arg_names if a not in ARG_SOURCES]
            hint = f', "{" ".join(a + "=<world attribute>" for a in args)}"' if args else ""
            problems.append(
                f"URL pattern {pattern.key!r} ({pattern.route}) is not in the permission matrix. Add a row to "
                f"MATRIX in tests/security/matrix.py with the outcome each party must get, columns "
                f"{' '.join(PARTIES)}, e.g.\n"
                f'    "{pattern.key}": ("GET", "login  login  login  login  ok     deny   deny   deny   deny"{hint}),'
            )
    for name in MATRIX:
        if name not in keys:
            problems.append(f"MATRIX row {name!r} names no URL pattern: remove it or fix its name.")
    return problems


# --- The world every row is requested in ----------------------------------------------------


class MatrixWorld(World):
    """The shared World plus an open assessment for the couple and one for another couple."""

    def __init__(self):
        super().__init__()
        self.assignment, tokens = make_assignment(self.couple)
        self.token_a, self.token_b = tokens["A"], tokens["B"]
        self.inbox_kind = "overdue"  # the inbox item an "Acknowledge" or "Dismiss" names
        self.response_a = self.assignment.responses.get(partner__position="A")
        self.response_b = self.assignment.responses.get(partner__position="B")
        self.other_couple = make_couple(
            self.colleague, label="Sam & Alex", a=("Sam", "sam@example.com"), b=("Alex", "alex@example.com")
        )
        self.other_assignment, other_tokens = make_assignment(self.other_couple)
        self.other_token_a = other_tokens["A"]
        self.other_response_a = self.other_assignment.responses.get(partner__position="A")
        self.outsider_couple = make_couple(
            self.outsider, label="Robin & Lee", a=("Robin", "robin@example.com"), b=("Lee", "lee@example.com")
        )
        self.owner_uidb64 = urlsafe_base64_encode(force_bytes(self.owner.pk))
        self.reset_token = default_token_generator.make_token(self.owner)
        self.expired_assignment, expired_tokens = make_assignment(self.couple, now=timezone.now() - timedelta(days=90))
        self.expired_token_a = expired_tokens["A"]
        self.member = self.colleague.membership
        self.invitation, self.invitation_token = Invitation.issue(
            practice=self.practice, email="newcomer@riverside.example", role="counselor", by=self.admin
        )
        self.export_job = ExportJob.objects.create(
            practice=self.practice, requested_by=self.admin, kind="answers", format="csv"
        )
        self.unsubscribe_token = unsubscribe_token(self.response_a.partner)
        # The invitations of the long-expired administration would be overdue work (no worker runs
        # here) and /readyz would rightly say so; this world is about permissions, not delivery.
        Job.objects.all().delete()
        self.alert = SafetyAlert.objects.create(response=self.response_b, level="concern")

    def staff(self, party):
        return {
            "counselor": self.owner,
            "colleague": self.colleague,
            "admin": self.admin,
            "outsider": self.outsider,
            "outsider_admin": self.outsider_admin,
        }.get(party)

    def partner_token(self, party):
        return {"partner_a": self.token_a, "partner_b": self.token_b, "other_partner": self.other_token_a}.get(party)

    def resolve(self, source):
        if source.lstrip("-").isdigit():
            return int(source)
        value = self
        for part in source.split("."):
            value = getattr(value, part)
        return value


def url_for(world, row, pattern):
    if row.name in MATRIX and row.name.endswith(":*"):
        return reverse(PREFIXES[row.name[:-2]])
    kwargs = {}
    for name in pattern.arg_names:
        source = row.args.get(name) or ARG_SOURCES.get(name)
        if source is None:
            raise AssertionError(
                f'MATRIX row {row.name!r}: say how to fill <{name}>, e.g. add "{name}=<world attribute>" '
                f"as the row's third item, or add {name!r} to ARG_SOURCES."
            )
        kwargs[name] = world.resolve(source)
    return reverse(row.name, kwargs=kwargs)


# --- Classifying a response -----------------------------------------------------------------


def outcome_of(response):
    """The OUTCOMES word for a response (or its status code when it fits none)."""
    from urllib.parse import urlsplit

    status = response.status_code
    location = response.headers.get("HX-Redirect") or (response.headers.get("Location") if 300 <= status < 400 else "")
    if location:
        path = urlsplit(location).path
        if path.startswith((reverse("login"), reverse("admin:login"))):
            return "login"
        if path.startswith((reverse("two_factor_setup"), reverse("two_factor_verify"))):
            return "2fa"
        return "ok"
    if 200 <= status < 300 or status == 400:
        return "ok"
    return {403: "deny", 404: "deny", 410: "gone", 405: "405", 409: "409", 429: "429"}.get(status, str(status))


INLINE_CODE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=|\sstyle\s*=", re.IGNORECASE)


def inline_code(response):
    """Inline scripts, on* handlers or style attributes in an HTML page (a strict CSP blocks them)."""
    if "text/html" not in response.headers.get("Content-Type", ""):
        return []
    return INLINE_CODE.findall(response.content.decode(errors="replace"))
