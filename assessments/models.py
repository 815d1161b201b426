import base64
import hashlib
import hmac
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from clients.models import Couple, Partner
from practice.models import Practice

from . import scoring


class Instrument(models.Model):
    """One published version of an assessment, loaded from assessments/instruments/<slug>-v<N>.json.

    A published version never changes: the loader refuses a file whose items differ from what is
    stored. A new wording is a new version.
    """

    slug = models.SlugField()
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    definition = models.JSONField(help_text="The whole data file, as loaded.")
    checksum = models.CharField(max_length=64)
    scoring_key = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="Hash of everything scoring depends on; versions with equal keys have comparable scores.",
    )
    loaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["slug", "version"], name="one_instrument_version")]
        ordering = ["slug", "-version"]

    def __str__(self):
        return f"{self.title} v{self.version}"

    @classmethod
    def current(cls, slug="connection"):
        return cls.objects.filter(slug=slug).order_by("-version").first()

    @property
    def label(self):
        return f"{self.slug}-v{self.version}"

    def norms(self):
        return {k: scoring.Norms(sd=v["sd"], alpha=v["alpha"]) for k, v in self.definition["norms"].items()}

    def domains(self):
        return {d["key"]: d for d in self.definition["domains"]}

    def sections(self):
        return self.definition["sections"]

    def item_specs(self, items=None):
        items = items if items is not None else self.items.all()
        return [i.spec() for i in items]

    def scores_comparable_with(self, other):
        """Whether scores of this version and ``other`` may be compared (same scoring key)."""
        return scoring.same_scoring(self.scoring_key, other.scoring_key)

    def texts(self, language):
        """The definition with ``language``'s texts laid over it; see `assessments.translations.texts`."""
        from .translations import texts

        return texts(self, language)


class Item(models.Model):
    class Scale(models.TextChoices):
        AGREEMENT = "agreement"
        FREQUENCY = "frequency"

    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="items")
    code = models.CharField(max_length=16, help_text="Stable item id, e.g. COM1.")
    section = models.CharField(max_length=40)
    domain = models.CharField(max_length=40, blank=True)
    text = models.TextField()
    reverse_keyed = models.BooleanField(default=False)
    scored = models.BooleanField(default=True)
    scale = models.CharField(max_length=16, choices=Scale.choices, default=Scale.AGREEMENT)
    scale_min = models.PositiveSmallIntegerField(default=1)
    scale_max = models.PositiveSmallIntegerField(default=5)
    predicts = models.CharField(max_length=16, blank=True, help_text="Code of the item a prediction targets.")
    safety_code = models.CharField(max_length=4, blank=True)
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["instrument", "position"]
        constraints = [models.UniqueConstraint(fields=["instrument", "code"], name="one_item_code_per_instrument")]

    def __str__(self):
        return self.code

    def spec(self):
        return scoring.ItemSpec(
            id=self.code,
            domain=self.domain or None,
            reverse=self.reverse_keyed,
            scored=self.scored,
            scale_min=self.scale_min,
            scale_max=self.scale_max,
            predicts=self.predicts or None,
            safety_code=self.safety_code or None,
        )


class AssignmentQuerySet(models.QuerySet):
    def open(self):
        return self.filter(status=Assignment.Status.OPEN)

    def overdue(self, now=None):
        return self.open().filter(due_at__lt=now or timezone.now())

    def for_practice(self, practice):
        return self.filter(couple__practice=practice)


class Assignment(models.Model):
    """One administration of an instrument to one couple."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        COMPLETED = "completed", "Both finished"
        CANCELLED = "cancelled", "Cancelled"

    couple = models.ForeignKey(Couple, on_delete=models.CASCADE, related_name="assignments")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="+")
    assigned_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    assigned_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True, help_text="When the summary was shared.")
    both_finished_notified_at = models.DateTimeField(null=True, blank=True)
    overdue_notified_at = models.DateTimeField(null=True, blank=True)

    objects = AssignmentQuerySet.as_manager()

    class Meta:
        ordering = ["-assigned_at"]
        indexes = [models.Index(fields=["couple", "-assigned_at"]), models.Index(fields=["status", "due_at"])]

    def __str__(self):
        return f"{self.instrument} for {self.couple} ({self.assigned_at:%Y-%m-%d})"

    @property
    def is_open(self):
        return self.status == self.Status.OPEN

    @property
    def is_overdue(self):
        return self.is_open and self.due_at < timezone.now()

    @property
    def link_expires_at(self):
        return self.due_at + timezone.timedelta(days=self.couple.practice.link_grace_days)


def _random_seed():
    return secrets.randbits(31)


def hash_token(token):
    return hashlib.sha256(token.encode()).hexdigest()


def link_token(nonce):
    """A link's token: HMAC of a random 128-bit nonce under SECRET_KEY.

    The database keeps the nonce and the token's SHA-256 only, so a copy of the database alone
    opens no response, while a reminder e-mail can carry the same link as the invitation.
    """
    mac = hmac.new(settings.SECRET_KEY.encode(), f"response-link:{nonce}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


class Response(models.Model):
    """One partner's answers to one assignment; reached only through that partner's link."""

    class Safety(models.TextChoices):
        NONE = "none", "None"
        CONCERN = "concern", "Concern"
        URGENT = "urgent", "Urgent"

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="responses")
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="responses")
    order_seed = models.PositiveIntegerField(default=_random_seed, help_text="Fixes this partner's item order.")
    identity_confirmed_at = models.DateTimeField(null=True, blank=True)
    consented_at = models.DateTimeField(null=True, blank=True)
    share_consent = models.BooleanField(null=True, blank=True, help_text="May a summary be shared later?")
    started_at = models.DateTimeField(null=True, blank=True)
    last_saved_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    safety_level = models.CharField(max_length=16, choices=Safety.choices, blank=True)
    safety_alert_sent_at = models.DateTimeField(null=True, blank=True)
    safety_alert_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["assignment", "partner"], name="one_response_per_partner"),
        ]

    def __str__(self):
        return f"{self.partner} on {self.assignment_id}"

    @property
    def is_submitted(self):
        return self.submitted_at is not None

    def issue_link(self):
        """Revoke any live link and return a fresh token for a new one."""
        now = timezone.now()
        self.links.filter(revoked_at__isnull=True).update(revoked_at=now)
        nonce = secrets.token_hex(16)
        token = link_token(nonce)
        ResponseLink.objects.create(response=self, nonce=nonce, token_hash=hash_token(token), created_at=now)
        return token

    def live_token(self):
        """The token of the live link (re-derived for e-mails), or None when revoked."""
        link = self.links.filter(revoked_at__isnull=True).first()
        return link_token(link.nonce) if link else None

    def link_url(self, token):
        from django.urls import reverse

        return settings.SITE_URL + reverse("assessments:open_link", args=[token])


class ResponseLink(models.Model):
    """A personal link's token hash. Revoking keeps the row so an old link can say it was replaced."""

    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="links")
    nonce = models.CharField(max_length=32)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["response"], condition=Q(revoked_at__isnull=True), name="one_live_link_per_response"
            )
        ]


class Answer(models.Model):
    """One chosen answer. value None means "Prefer not to answer" (missing, never 0).

    seq is the client's per-item sequence number: a save with a lower or equal seq than the
    stored one never overwrites it, so late or repeated saves cannot undo a newer choice.
    """

    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="answers")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+")
    value = models.PositiveSmallIntegerField(null=True, blank=True)
    seq = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["response", "item"], name="one_answer_per_item")]


class Score(models.Model):
    """Scores computed at submit, stored with the instrument and scoring versions."""

    response = models.OneToOneField(Response, on_delete=models.CASCADE, related_name="score")
    instrument_version = models.PositiveIntegerField()
    scoring_version = models.CharField(max_length=16)
    domains = models.JSONField(help_text="Domain key to 0-100 score, or null when not scored.")
    connection_index = models.FloatField(null=True, blank=True)
    attunement = models.FloatField(null=True, blank=True)
    attunement_exact = models.FloatField(null=True, blank=True)
    straightlined = models.BooleanField(default=False)
    computed_at = models.DateTimeField(default=timezone.now)


class ReminderQuerySet(models.QuerySet):
    def due(self, now=None):
        return self.filter(status=Reminder.Status.SCHEDULED, due_at__lte=now or timezone.now())


class Reminder(models.Model):
    """A planned e-mail to one partner, a database row so that it is sent once and only once."""

    class Kind(models.TextChoices):
        INVITATION = "invitation", "Invitation"
        REMINDER_1 = "reminder_1", "First reminder"
        REMINDER_2 = "reminder_2", "Second reminder"
        BEFORE_DUE = "before_due", "Day-before reminder"
        OVERDUE = "overdue", "Overdue notice"
        MANUAL = "manual", "Reminder sent by the counselor"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        CLAIMED = "claimed", "Sending"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Not needed"
        FAILED = "failed", "Failed"

    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="reminders")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    sequence = models.PositiveSmallIntegerField(default=0, help_text="Distinguishes repeated manual reminders.")
    due_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)

    objects = ReminderQuerySet.as_manager()

    class Meta:
        ordering = ["due_at"]
        constraints = [
            models.UniqueConstraint(fields=["response", "kind", "sequence"], name="one_reminder_per_kind"),
        ]
        indexes = [models.Index(fields=["status", "due_at"])]


class ExportJob(models.Model):
    """A large export built in the background; its file expires after 24 hours."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Ready"
        FAILED = "failed", "Failed"

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="export_jobs")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=32)
    format = models.CharField(max_length=8)
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    rows_done = models.PositiveIntegerField(default=0)
    rows_total = models.PositiveIntegerField(default=0)
    file_name = models.CharField(max_length=200, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)


# --- Workflows across models ---------------------------------------------------------


def answers_of(response):
    """The response's answers as {item code: raw value or None}.

    Raises scoring.ScoringError when an answer belongs to another instrument version's item:
    scores are only ever computed from answers to the version that was assigned.
    """
    rows = list(response.answers.values_list("item__code", "value", "item__instrument_id"))
    instrument_id = response.assignment.instrument_id
    foreign = sorted(code for code, _, iid in rows if iid != instrument_id)
    if foreign:
        raise scoring.ScoringError(f"answers to items of another instrument version: {', '.join(foreign)}")
    return {code: value for code, value, _ in rows}


def compute_score(response, *, partner_response=None, items=None):
    """Score one response from its stored answers and save it (idempotent; used by recompute).

    Attunement needs the partner's answers, so it is filled only when partner_response is
    given and submitted.
    """
    instrument = response.assignment.instrument
    items = list(items if items is not None else instrument.items.all())
    specs = instrument.item_specs(items)
    answers = answers_of(response)
    result = scoring.score_response(specs, answers, instrument.norms())
    tune = None
    if partner_response is not None and partner_response.submitted_at is not None:
        tune = scoring.attunement(specs, answers, answers_of(partner_response))
    score, _ = Score.objects.update_or_create(
        response=response,
        defaults={
            "instrument_version": instrument.version,
            "scoring_version": scoring.SCORING_VERSION,
            "domains": result.domains,
            "connection_index": result.connection_index,
            "attunement": tune.within_one if tune else None,
            "attunement_exact": tune.exact if tune else None,
            "straightlined": result.straightlined,
            "computed_at": timezone.now(),
        },
    )
    if response.safety_level != result.safety_level:
        response.safety_level = result.safety_level
        response.save(update_fields=["safety_level"])
    return score


def assign(*, couple, instrument, due_at, by, now=None, enqueue=True):
    """Create one assignment and a response per partner; plan reminders; enqueue invitations.

    Returns (assignment, {partner position: token}). Tokens are shown once and never stored.
    """
    from . import reminders

    now = now or timezone.now()
    assignment = Assignment.objects.create(
        couple=couple, instrument=instrument, assigned_by=by, assigned_at=now, due_at=due_at
    )
    tokens = {}
    for partner in couple.partners.all():
        response = Response.objects.create(assignment=assignment, partner=partner)
        tokens[partner.position] = response.issue_link()
        reminders.plan(response, now=now)
    if enqueue:
        reminders.enqueue_due_on_commit(assignment)
    return assignment, tokens


def submit(response, *, now=None):
    """Submit a response once. Returns True for the call that submitted it, False for repeats.

    The conditional update makes a double click or two tabs produce exactly one submission.
    When this makes both partners finished, the assignment completes, attunement is scored for
    both, and the counselor's "both finished" e-mail is enqueued once.
    """
    from django.db import transaction

    now = now or timezone.now()
    with transaction.atomic():
        won = Response.objects.filter(pk=response.pk, submitted_at__isnull=True).update(submitted_at=now)
        if not won:
            return False
        response.submitted_at = now
        assignment = Assignment.objects.select_for_update().get(pk=response.assignment_id)
        responses = list(assignment.responses.select_related("partner").order_by("partner__position"))
        items = list(assignment.instrument.items.all())
        others = [r for r in responses if r.pk != response.pk]
        other = others[0] if others else None
        compute_score(response, partner_response=other, items=items)
        if response.safety_level in (Response.Safety.CONCERN, Response.Safety.URGENT):
            from .tasks import notify_safety_alert

            notify_safety_alert.delay_on_commit(response.pk)
        Reminder.objects.filter(response=response, status=Reminder.Status.SCHEDULED).update(
            status=Reminder.Status.SKIPPED
        )
        if all(r.submitted_at is not None for r in responses):
            if other is not None:
                compute_score(other, partner_response=response, items=items)
            Assignment.objects.filter(pk=assignment.pk, status=Assignment.Status.OPEN).update(
                status=Assignment.Status.COMPLETED, completed_at=now
            )
            from .tasks import notify_both_finished

            notify_both_finished.delay_on_commit(assignment.pk)
    return True


def cancel(assignment, *, now=None):
    """Cancel an open assignment: its links stop working, its reminders are not sent.

    Answers already given are kept. Returns False when it was no longer open (a double click).
    """
    now = now or timezone.now()
    if not Assignment.objects.filter(pk=assignment.pk, status=Assignment.Status.OPEN).update(
        status=Assignment.Status.CANCELLED, cancelled_at=now
    ):
        return False
    assignment.status, assignment.cancelled_at = Assignment.Status.CANCELLED, now
    Reminder.objects.filter(response__assignment=assignment, status=Reminder.Status.SCHEDULED).update(
        status=Reminder.Status.SKIPPED
    )
    return True


def send_invitation(response, *, now=None):
    """Plan one more invitation e-mail for a partner (carrying their live link), sent on commit."""
    from django.db.models import Max

    from .tasks import send_reminder

    now = now or timezone.now()
    last = response.reminders.filter(kind=Reminder.Kind.INVITATION).aggregate(n=Max("sequence"))["n"]
    reminder = Reminder.objects.create(
        response=response, kind=Reminder.Kind.INVITATION, sequence=(last or 0) + 1, due_at=now
    )
    send_reminder.delay_on_commit(reminder.pk)
    return reminder


class InstrumentTranslation(models.Model):
    """One instrument version's texts in one language, loaded from <slug>-v<N>.<language>.json.

    Part of the published version and as immutable: the loader refuses a changed text. Only the
    status may move, as evidence about the translation accrues.
    """

    class Status(models.TextChoices):
        NOT_VALIDATED = "translated, not yet validated", "Translated, not yet validated"
        VALIDATED = "validated", "Validated"

    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="translations")
    language = models.CharField(max_length=16, help_text="A language code such as es or pt-br.")
    status = models.CharField(max_length=40, choices=Status.choices)
    definition = models.JSONField(help_text="The whole translation file, as loaded.")
    checksum = models.CharField(max_length=64)
    loaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["instrument", "language"], name="one_translation_per_language")]
        ordering = ["instrument", "language"]

    def __str__(self):
        return f"{self.instrument.label}.{self.language}"
