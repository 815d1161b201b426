"""The permission matrix: every URL pattern, every party, the outcome each must get.

How to add a URL (one line): put a row in MATRIX below, in the same column order as PARTIES:

    "clients:export":                  ("GET", "login  login  login  login  ok     deny   deny   deny   deny"),

- key: the URL name as `reverse()` takes it ("namespace:name"); an included app that is checked as a
  whole (the Django admin) is written "namespace:*".
- methods: the methods the view accepts, space-separated ("GET", "POST", "GET POST"). Each declared
  method must give exactly the row's outcome; GET or POST when not declared must give 405, a 400,
  or the same (never more access than the declared method).
- outcomes: one per party, in PARTIES order (see OUTCOMES for the words). Where the methods
  differ, write one word per declared method joined by "/" in the methods' order ("ok/next": the
  GET serves the page, the POST sends on).
- args (optional third item): how to fill the URL's arguments from the test world, as
  "name=attribute" pairs ("pk=assignment.pk index=0"). Arguments not named there are filled by
  their name from ARG_SOURCES (pk -> the couple, response_id -> partner A's response, ...).

Every request is made plain and as htmx, and never may any party get a 500.
"""

import re
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.tokens import default_token_generator
from django.contrib.messages import get_messages
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from assessments import plans
from assessments.models import Assignment, ExportJob, Reminder, SafetyAlert
from assessments.reminders import queue, unsubscribe_token
from practice.models import Invitation, Job
from tests.conftest import World, make_assignment, make_couple
from tests.practice.export_helpers import answer_and_submit

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
    "ok": "served: the page itself (2xx), or the page with a form error (400)",
    "next": "sent on by a redirect that refuses nothing: an action done, a link exchanged, a step to take",
    "msg": "refused by a redirect carrying an error or warning message (the action was not done)",
    "login": "sent to sign in: a redirect to the sign-in page (the site's or the Django admin's)",
    "deny": "refused without saying whether the object exists: 403 or 404",
    "gone": "410: an expired, replaced or cancelled link",
    "2fa": "sent to set up or enter a second factor first",
    "405": "method not allowed",
    "409": "conflict: the request cannot apply to who is signed in (e.g. an invitation while signed in)",
    "429": "sign-in paused (lockout)",
}

# Outcomes that refuse: a method the row does not declare may answer with these too.
REFUSALS = {"login", "deny", "gone", "2fa", "405", "409", "429", "msg"}

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
    "home":                            ("GET",      "login  login  login  login  next   next   next   next   next"),
    "healthz":                         ("GET",      "ok     ok     ok     ok     ok     ok     ok     ok     ok"),
    "readyz":                          ("GET",      "ok     ok     ok     ok     ok     ok     ok     ok     ok"),
    "login":                           ("GET POST", "ok     ok     ok     ok     next   next   next   next   next"),
    "logout":                          ("POST",     "login  login  login  login  login  login  login  login  login"),
    "password_reset":                  ("GET POST", "ok     ok     ok     ok     ok     ok     ok     ok     ok"),
    "password_reset_done":             ("GET",      "ok     ok     ok     ok     ok     ok     ok     ok     ok"),
    # The counselor owns the reset link; signing in (a newer last sign-in) voided its token, so
    # they are served the "no longer valid" page.
    "password_reset_confirm":          ("GET POST", "next   next   next   next   ok     next   next   next   next",
                                        "uidb64=owner_uidb64 token=reset_token"),
    "password_reset_complete":         ("GET",      "ok     ok     ok     ok     ok     ok     ok     ok     ok"),
    "two_factor_setup":                ("GET POST", "login  login  login  login  ok     ok     ok     ok     ok"),
    "two_factor_verify":               ("GET POST", "login  login  login  login  2fa    2fa    2fa    2fa    2fa"),
    "two_factor_recovery_codes":       ("GET POST", "login  login  login  login  2fa    2fa    2fa    2fa    2fa"),
    "keep_alive":                      ("GET",      "login  login  login  login  ok     ok     ok     ok     ok"),
    "practice:overview":               ("GET",      "login  login  login  login  deny   deny   ok     deny   ok"),
    "practice:invite":                 ("GET POST", "login  login  login  login  deny   deny   ok     deny   ok"),
    "practice:invitation_revoke":      ("POST",     "login  login  login  login  deny   deny   next   deny   deny",
                                        "pk=invitation.pk"),
    "practice:invitation_accept":      ("GET POST", "ok     ok     ok     ok     409    409    409    409    409",
                                        "token=invitation_token"),
    "practice:member_role":            ("POST",     "login  login  login  login  deny   deny   msg    deny   deny",
                                        "pk=member.pk"),
    "practice:member_deactivate":      ("POST",     "login  login  login  login  deny   deny   next   deny   deny",
                                        "pk=member.pk"),
    "practice:member_reactivate":      ("POST",     "login  login  login  login  deny   deny   next   deny   deny",
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
    "assessments:remind_now":          ("POST",     "login  login  login  login  next   deny   deny   deny   deny"),
    "assessments:pause_reminders":     ("POST",     "login  login  login  login  msg    deny   deny   deny   deny"),
    "assessments:retry_message":       ("POST",     "login  login  login  login  next   deny   deny   deny   deny",
                                        "job_pk=failed_job.pk"),
    # The page is served; confirming sends on to the same page, now saying reminders stopped.
    "assessments:unsubscribe":         ("GET POST", "ok/next  ok/next  ok/next  ok/next  ok/next  "
                                                    "ok/next  ok/next  ok/next  ok/next",
                                        "token=unsubscribe_token"),
    "assessments:caseload":            ("GET",      "login  login  login  login  ok     ok     ok     ok     ok"),
    "assessments:inbox":               ("GET",      "login  login  login  login  ok     ok     ok     ok     ok"),
    # The matrix posts no choice: the counselor is asked to choose Acknowledge or Dismiss.
    "assessments:inbox_mark":          ("POST",     "login  login  login  login  msg    deny   deny   deny   deny",
                                        "kind=inbox_kind"),
    "clients:couple_create":           ("GET POST", "login  login  login  login  ok     ok     ok     ok     ok"),
    "assessments:couple":              ("GET",      "login  login  login  login  ok     deny   deny   deny   deny"),
    "clients:couple_notes":            ("POST",     "login  login  login  login  next   deny   deny   deny   deny"),
    "clients:couple_archive":          ("POST",     "login  login  login  login  msg    deny   deny   deny   deny"),
    "assessments:comparison":          ("GET",      "login  login  login  login  ok     deny   deny   deny   deny"),
    "assessments:comparison_pdf":      ("GET",      "login  login  login  login  ok     deny   deny   deny   deny"),
    "assessments:release":             ("POST",     "login  login  login  login  msg    deny   deny   deny   deny"),
    "assessments:withdraw":            ("POST",     "login  login  login  login  next   deny   deny   deny   deny"),
    "assessments:share_results":       ("POST",     "login  login  login  login  next   deny   deny   deny   deny"),
    "assessments:acknowledge_alert":   ("POST",     "login  login  login  login  next   deny   deny   deny   deny"),
    "assessments:end_access":          ("POST",     "login  login  login  login  next   deny   deny   deny   deny"),
    "assessments:answer_here":         ("POST",     "login  login  login  login  ok     deny   deny   deny   deny"),
    # The matrix's browsers are not marked as the practice's tablet: handing one over is refused with a message.
    "assessments:this_device":         ("POST",     "login  login  login  login  msg    deny   deny   deny   deny"),
    "assessments:device":              ("GET POST", "login  login  login  login  ok     ok     ok     ok     ok"),
    "assessments:exit":                ("POST",     "next   next   next   next   next   next   next   next   next"),
    "assessments:finished":            ("GET",      "ok     ok     ok     ok     ok     ok     ok     ok     ok"),
    "assessments:here":                ("GET POST", "ok     ok     ok     ok     ok     ok     ok     ok     ok"),
    "assessments:here_end":            ("POST",     "next   next   next   next   next   next   next   next   next"),
    "assessments:shared_summary":      ("GET",      "deny   deny   deny   deny   deny   deny   deny   deny   deny"),
    "assessments:open_link":           ("GET",      "next   next   next   next   next   next   next   next   next"),
    "assessments:welcome":             ("GET POST", "deny   ok/next  deny   deny   deny   deny   deny   deny   deny"),
    "assessments:consent":             ("GET POST", "deny   ok     deny   deny   deny   deny   deny   deny   deny"),
    "assessments:section":             ("GET POST", "deny   ok/next  deny   deny   deny   deny   deny   deny   deny",
                                        "index=1"),
    "assessments:save_answer":         ("POST",     "deny   ok     deny   deny   deny   deny   deny   deny   deny"),
    "assessments:save_talk":           ("POST",     "deny   ok     deny   deny   deny   deny   deny   deny   deny"),
    "assessments:review":              ("GET",      "deny   ok     deny   deny   deny   deny   deny   deny   deny"),
    "assessments:submit":              ("POST",     "deny   ok     deny   deny   deny   deny   deny   deny   deny"),
    "assessments:results":             ("GET",      "deny   next   deny   deny   deny   deny   deny   deny   deny"),
    "assessments:support":             ("GET",      "deny   next   deny   deny   deny   deny   deny   deny   deny"),
    "assessments:partner_language":    ("POST",     "deny   next   deny   deny   deny   deny   deny   deny   deny"),
    "assessments:assign":              ("GET POST", "login  login  login  login  ok     deny   deny   deny   deny"),
    "assessments:plan":                ("GET POST", "login  login  login  login  ok     deny   deny   deny   deny"),
    # The matrix posts no choice: "Pause", "Resume" or "End" is asked for, and nothing changes.
    "assessments:plan_action":         ("POST",     "login  login  login  login  msg    deny   deny   deny   deny"),
    "assessments:cancel":              ("POST",     "login  login  login  login  next   deny   deny   deny   deny"),
    "assessments:resend":              ("POST",     "login  login  login  login  next   deny   deny   deny   deny"),
    "assessments:reissue":             ("POST",     "login  login  login  login  next   deny   deny   deny   deny"),
    "admin:*":                         ("GET",      "login  login  login  login  login  login  login  login  login"),
}
# fmt: on


@dataclass(frozen=True)
class Row:
    name: str
    methods: tuple
    expected: dict  # party -> {method: outcome}
    args: dict  # argument name -> source

    @property
    def url_name(self):
        """The URL name (a key may add "#label" to request one URL a second way)."""
        return self.name.split("#", 1)[0]

    def outcome(self, party, method):
        """The outcome of a declared method for a party."""
        return self.expected[party][method]

    def outcomes(self, party):
        """Every outcome the party gets by a declared method."""
        return set(self.expected[party].values())


def parse_row(name, spec):
    methods, outcomes, *rest = spec
    methods = tuple(methods.split())
    words = outcomes.split()
    if len(words) != len(PARTIES):
        raise ValueError(f"MATRIX[{name!r}] has {len(words)} outcomes; it needs {len(PARTIES)}: {' '.join(PARTIES)}")
    expected = {}
    for party, word in zip(PARTIES, words, strict=True):
        per_method = word.split("/")
        if len(per_method) == 1:
            per_method = per_method * len(methods)
        if len(per_method) != len(methods):
            raise ValueError(f"MATRIX[{name!r}] gives {party} {word!r}: one outcome, or one per method {methods}")
        unknown = set(per_method) - set(OUTCOMES)
        if unknown:
            raise ValueError(
                f"MATRIX[{name!r}] uses unknown outcomes {sorted(unknown)}; choose from {sorted(OUTCOMES)}"
            )
        expected[party] = dict(zip(methods, per_method, strict=True))
    args = dict(pair.split("=", 1) for pair in (rest[0].split() if rest else []))
    return Row(name, methods, expected, args)


def rows(matrix=None):
    return [parse_row(name, spec) for name, spec in (MATRIX if matrix is None else matrix).items()]


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
        # A measurement plan, so the couple page and the plan form show a calendar and "Change the plan".
        plans.create(
            couple=self.couple,
            every_weeks=4,
            administrations=6,
            start_on=timezone.localdate(timezone=self.practice.tz) + timedelta(days=7),
            due_days=7,
            by=self.owner,
        )
        self.response_a = self.assignment.responses.get(partner__position="A")
        self.response_b = self.assignment.responses.get(partner__position="B")
        # Partner A is past "this is me" and the consent page, so the answering pages are served
        # to them rather than sending them back a step.
        self.response_a.identity_confirmed_at = self.response_a.consented_at = timezone.now()
        self.response_a.share_consent = True
        self.response_a.save(update_fields=["identity_confirmed_at", "consented_at", "share_consent"])
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
        # A message to partner A that could not be delivered, for "Try again".
        invitation = self.response_a.reminders.get(kind=Reminder.Kind.INVITATION)
        self.failed_job = queue(invitation)
        Job.objects.filter(pk=self.failed_job.pk).update(
            status=Job.Status.FAILED,
            last_error="the address was rejected by the mail server",
            finished_at=timezone.now(),
        )
        Reminder.objects.filter(pk=invitation.pk).update(status=Reminder.Status.FAILED)
        # The invitations went out two hours ago: "Resend" and "Remind now" are served, not refused
        # as a double click or as too soon after the invitation.
        Reminder.objects.filter(response__assignment=self.assignment, kind=Reminder.Kind.INVITATION).update(
            due_at=timezone.now() - timedelta(hours=2)
        )

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


class ReleasedWorld(MatrixWorld):
    """MatrixWorld after both partners finished, both agreed to share and the counselor released
    the summary: the world in which RELEASED_MATRIX's rows are requested."""

    def __init__(self):
        super().__init__()
        for response in (self.response_a, self.response_b):
            response.identity_confirmed_at = response.consented_at = timezone.now()
            response.share_consent = True
            response.save(update_fields=["identity_confirmed_at", "consented_at", "share_consent"])
            answer_and_submit(response)
        Assignment.objects.filter(pk=self.assignment.pk).update(released_at=timezone.now())
        Job.objects.all().delete()


# The rows whose outcomes change once a summary is released, requested in ReleasedWorld (each
# partner sees the summary through their own response's address: "#b" is partner B's).
# fmt: off
RELEASED_MATRIX = {
    # URL name                         methods       anon   A      B      other  couns  colle  admin  outs   o-adm
    "assessments:shared_summary":      ("GET",      "deny   ok     deny   deny   deny   deny   deny   deny   deny"),
    "assessments:shared_summary#b":    ("GET",      "deny   deny   ok     deny   deny   deny   deny   deny   deny",
                                        "response_id=response_b.pk"),
    "assessments:results":             ("GET",      "deny   ok     deny   deny   deny   deny   deny   deny   deny"),
    "assessments:comparison":          ("GET",      "login  login  login  login  ok     deny   deny   deny   deny"),
    "assessments:release":             ("POST",     "login  login  login  login  next   deny   deny   deny   deny"),
}
# fmt: on


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
    return reverse(row.url_name, kwargs=kwargs)


# --- Classifying a response -----------------------------------------------------------------


def refusal_messages(response):
    """The error and warning messages the request queued for the next page."""
    request = getattr(response, "wsgi_request", None)
    if request is None or not hasattr(request, "_messages"):
        return []
    return [m for m in get_messages(request) if m.level >= messages.WARNING]


def outcome_of(response):
    """The OUTCOMES word for a response (or its status code when it fits none)."""
    status = response.status_code
    location = response.headers.get("HX-Redirect") or (response.headers.get("Location") if 300 <= status < 400 else "")
    if location:
        path = urlsplit(location).path
        if path.startswith((reverse("login"), reverse("admin:login"))):
            return "login"
        if path.startswith((reverse("two_factor_setup"), reverse("two_factor_verify"))):
            return "2fa"
        return "msg" if refusal_messages(response) else "next"
    if 200 <= status < 300 or status == 400:
        return "ok"
    return {403: "deny", 404: "deny", 410: "gone", 405: "405", 409: "409", 429: "429"}.get(status, str(status))


INLINE_CODE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=|\sstyle\s*=", re.IGNORECASE)


def inline_code(response):
    """Inline scripts, on* handlers or style attributes in an HTML page (a strict CSP blocks them)."""
    if "text/html" not in response.headers.get("Content-Type", ""):
        return []
    return INLINE_CODE.findall(response.content.decode(errors="replace"))
