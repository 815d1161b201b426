import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from clients.models import Couple, Partner
from practice import tokens
from practice.models import Job, Practice

from . import scoring

LINK_PURPOSE = "response-link"


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

    def for_counselor(self, user):
        """Administrations of the counselor's own couples, in the counselor's practice."""
        return self.filter(couple__counselor=user, couple__practice_id=user.membership.practice_id)


class ResponseQuerySet(models.QuerySet):
    def for_counselor(self, user):
        """Responses on the counselor's own couples, in the counselor's practice."""
        return self.filter(
            assignment__couple__counselor=user, assignment__couple__practice_id=user.membership.practice_id
        )


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
        """When an open administration's links stop working: the due date plus the practice's grace."""
        return self.due_at + timedelta(days=self.couple.practice.link_grace_days)

    def release_refusal(self, responses):
        """Why the couple summary cannot be released now, in words; "" when it can.

        ``responses`` is ``comparison.responses_by_position(self)``.
        """
        waiting = [r.partner.name for r in responses.values() if r.submitted_at is None]
        if len(responses) < 2 or waiting:
            names = " and ".join(waiting) or "a partner"
            return f"The summary can be released once both have finished; {names} is still answering."
        refused = [r.partner.name for r in responses.values() if r.share_consent is not True]
        if refused:
            return f"{' and '.join(refused)} did not agree to share a summary, so it stays private."
        return ""

    def summary_is_shared(self, responses):
        """May the partners see the couple summary now? Released, both finished, both (still) agree."""
        return self.released_at is not None and not self.release_refusal(responses)


def _random_seed():
    return secrets.randbits(31)


def link_token(nonce):
    """A partner link's token, re-derived from its nonce (practice/tokens.py explains the scheme)."""
    return tokens.token_for(LINK_PURPOSE, nonce)


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
    sharing_changed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the partner last changed their first choice about sharing."
    )
    results_released_at = models.DateTimeField(
        null=True, blank=True, help_text="When the counselor let this partner see their own results."
    )
    language = models.CharField(
        max_length=8,
        choices=settings.LANGUAGES,
        blank=True,
        help_text="The language the partner answered in (their partner record's language until they start).",
    )

    objects = ResponseQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["assignment", "partner"], name="one_response_per_partner"),
        ]

    def __str__(self):
        return f"{self.partner} on {self.assignment_id}"

    @property
    def is_submitted(self):
        return self.submitted_at is not None

    @property
    def link_expires_at(self):
        """When this partner's link stops opening anything: the due date plus the practice's grace while
        open, a practice-set number of days after submitting once submitted."""
        practice = self.assignment.couple.practice
        if self.submitted_at is not None:
            return self.submitted_at + timedelta(days=practice.closed_link_days)
        return self.assignment.link_expires_at

    def link_problem(self, now=None):
        """Why this partner's link opens nothing now ("cancelled" or "expired"), or "" when it opens."""
        if self.assignment.status == Assignment.Status.CANCELLED:
            return "cancelled"
        if (now or timezone.now()) > self.link_expires_at:
            return "expired"
        return ""

    def answering_closed(self, now=None):
        """Why no answer may change now ("submitted", "cancelled", "expired"), or "" while answering is open."""
        if self.submitted_at is not None:
            return "submitted"
        return self.link_problem(now)

    def may_see_results(self):
        """Has this partner submitted, and (where the practice waits for the feedback session) been shown them?"""
        if self.submitted_at is None:
            return False
        practice = self.assignment.couple.practice
        return practice.results_visibility == practice.ResultsVisibility.AT_ONCE or self.results_released_at is not None

    @property
    def is_safety_raised(self):
        """Do this partner's safety answers call for support and for the counselor's attention?"""
        return self.safety_level in (self.Safety.CONCERN, self.Safety.URGENT)

    def issue_link(self):
        """Revoke any live link and return a fresh token for a new one."""
        now = timezone.now()
        self.links.filter(revoked_at__isnull=True).update(revoked_at=now)
        nonce = tokens.new_nonce()
        token = link_token(nonce)
        ResponseLink.objects.create(response=self, nonce=nonce, token_hash=tokens.hash_token(token), created_at=now)
        return token

    def live_token(self):
        """The token of the live link (re-derived for e-mails), or None when revoked."""
        link = self.links.filter(revoked_at__isnull=True).first()
        return link_token(link.nonce) if link else None

    def link_url(self, token):
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
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="reminder")

    objects = ReminderQuerySet.as_manager()

    class Meta:
        ordering = ["due_at"]
        constraints = [
            models.UniqueConstraint(fields=["response", "kind", "sequence"], name="one_reminder_per_kind"),
        ]
        indexes = [models.Index(fields=["status", "due_at"])]


class ExportJobQuerySet(models.QuerySet):
    def for_practice(self, practice):
        return self.filter(practice=practice)


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

    objects = ExportJobQuerySet.as_manager()


class SafetyAlertQuerySet(models.QuerySet):
    def unacknowledged(self):
        return self.filter(acknowledged_at__isnull=True)

    def for_counselor(self, user):
        return self.filter(
            response__assignment__couple__counselor=user,
            response__assignment__couple__practice_id=user.membership.practice_id,
        )


class SafetyAlert(models.Model):
    """A partner's safety answers call for the counselor's attention.

    Raised in the same transaction as the answers that raise it (assessments/workflows.py), e-mailed
    to the counselor through the outbox, and open until the counselor acknowledges it in the app.
    The e-mail says only that something waits; the level and answers are on the page.
    """

    class Level(models.TextChoices):
        CONCERN = "concern", "Concern"
        URGENT = "urgent", "Urgent"

    response = models.OneToOneField(Response, on_delete=models.CASCADE, related_name="safety_alert")
    level = models.CharField(max_length=16, choices=Level.choices)
    raised_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True, help_text="The mail server took the counselor's e-mail.")
    first_viewed_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    escalated_at = models.DateTimeField(null=True, blank=True, help_text="The practice's admins were told it waits.")

    objects = SafetyAlertQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["acknowledged_at"])]

    def __str__(self):
        return f"{self.get_level_display()} alert on response {self.response_id}"

    @property
    def is_open(self):
        return self.acknowledged_at is None


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


class TalkFlag(models.Model):
    """A partner's "I'd like to talk about this" on one item, with an optional short private note.

    Only the counselor sees it (on the comparison, "for the session"); never the other partner, the
    shared summary, an e-mail or an export. seq orders saves like Answer.seq: a late or repeated
    save never undoes a newer choice. Unticking keeps the row (and any note) with wanted False, so
    a partner who changes their mind loses nothing, and the counselor sees nothing of it.
    """

    NOTE_MAX = 500

    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="talk_flags")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+")
    wanted = models.BooleanField(default=True)
    note = models.CharField(max_length=NOTE_MAX, blank=True)
    seq = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["response", "item"], name="one_talk_flag_per_item")]


class OfficeCodeQuerySet(models.QuerySet):
    def live(self, now=None):
        return self.filter(used_at__isnull=True, expires_at__gt=now or timezone.now())


class OfficeCode(models.Model):
    """A one-time 6-digit code that opens one partner's response on a device in the office.

    Only an HMAC of the code under SECRET_KEY is stored (assessments/office.py); it is shown once to
    the counselor who made it, works once, for 30 minutes, and never travels in a URL.
    """

    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="office_codes")
    code_hash = models.CharField(max_length=64, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    objects = OfficeCodeQuerySet.as_manager()


class InboxMark(models.Model):
    """The counselor is done with one item of the inbox (assessments/inbox.py): reviewed, acknowledged or dismissed.

    One row per administration and kind: the item stays done (a second "overdue" never comes back
    for the same administration). Safety alerts are not marked here: they have their own acknowledgement.
    """

    class Kind(models.TextChoices):
        NOT_REVIEWED = "not_reviewed", "Both finished — not yet reviewed"
        OVERDUE = "overdue", "Overdue"
        UNDELIVERED = "undelivered", "Could not be delivered"
        PLAN_ENDED = "plan_ended", "Plan ended"

    class How(models.TextChoices):
        REVIEWED = "reviewed", "Reviewed"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        DISMISSED = "dismissed", "Dismissed"

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="inbox_marks")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    how = models.CharField(max_length=16, choices=How.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["assignment", "kind"], name="one_inbox_mark_per_kind")]


class MeasurementPlan(models.Model):
    """A couple re-assessed on a rhythm (assessments/plans.py): every N weeks, for a number of
    administrations or until stopped, each created and both partners invited on its day.

    ``next_on`` is the practice-local day of the next administration (None once ended); ``made``
    counts the administrations the plan has created. One live (active or paused) plan per couple.
    """

    EVERY_WEEKS = (2, 4, 6, 8)
    MAX_ADMINISTRATIONS = 52

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        ENDED = "ended", "Ended"

    class Ended(models.TextChoices):
        COMPLETED = "completed", "every planned administration was sent"
        STOPPED = "stopped", "ended by the counselor"
        ARCHIVED = "archived", "the couple was archived"

    couple = models.ForeignKey(Couple, on_delete=models.CASCADE, related_name="plans")
    every_weeks = models.PositiveSmallIntegerField()
    administrations = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty: until stopped.")
    due_days = models.PositiveSmallIntegerField(help_text="Days each partner has to answer.")
    start_on = models.DateField()
    next_on = models.DateField(null=True, blank=True)
    made = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    ended_reason = models.CharField(max_length=16, choices=Ended.choices, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["couple"], condition=~Q(status="ended"), name="one_live_plan_per_couple"),
        ]
        indexes = [models.Index(fields=["status", "next_on"])]

    def __str__(self):
        return f"Every {self.every_weeks} weeks for {self.couple}"

    @property
    def is_live(self):
        return self.status != self.Status.ENDED

    @property
    def remaining(self):
        """Administrations still to come (None: until stopped)."""
        if self.status == self.Status.ENDED:
            return 0
        if self.administrations is None:
            return None
        return max(0, self.administrations - self.made)


class PlannedAdministration(models.Model):
    """One administration of a plan whose day has come: created exactly once per (plan, sequence).

    The sweep writes this row and its outbox job in one transaction; the job's worker creates the
    assignment (``assignment`` set) or records why not (``skipped_reason``).
    """

    plan = models.ForeignKey(MeasurementPlan, on_delete=models.CASCADE, related_name="planned")
    sequence = models.PositiveSmallIntegerField()
    on = models.DateField(help_text="The practice-local day it was planned for.")
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="planned"
    )
    skipped_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["plan", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "sequence"], name="one_planned_administration_per_sequence")
        ]


class CaseloadRow(models.Model):
    """What the caseload filters, sorts and shows for one couple, so its page is one indexed query.

    Derived data: ``assessments.caseload.refresh`` recomputes a couple's row from the couple, its
    administrations, scores, safety levels and alerts in one statement, inside the transaction of
    every workflow that changes one of them; ``manage.py rebuild_caseload`` recomputes them all.
    How far each partner got is not stored (an autosave would have to write it): the page reads it
    with one fixed query. The ``*_key`` columns are the sort values with no NULL (a missing due
    date or index sorts last), so one index per sort order serves both the page and its keyset.
    """

    couple = models.OneToOneField(Couple, on_delete=models.CASCADE, primary_key=True, related_name="caseload_row")
    counselor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The couple's practice, so that the page's "only this practice's couples" needs no join (NULL
    # only for a row written before the column; the migration fills every row).
    practice = models.ForeignKey(Practice, null=True, on_delete=models.CASCADE, related_name="+")
    couple_status = models.CharField(max_length=16)
    label = models.CharField(max_length=120)
    current = models.ForeignKey(Assignment, null=True, on_delete=models.SET_NULL, related_name="+")
    current_status = models.CharField(max_length=16, blank=True)
    current_due = models.DateTimeField(null=True)
    # Each partner's latest Connection Index, the one before it when the two score alike (else
    # NULL: no change is shown), and the instrument of the latest (its norms say whether the
    # change is reliable).
    index_a = models.FloatField(null=True)
    previous_a = models.FloatField(null=True)
    instrument_a = models.IntegerField(null=True)
    index_b = models.FloatField(null=True)
    previous_b = models.FloatField(null=True)
    instrument_b = models.IntegerField(null=True)
    safety_raised = models.BooleanField(default=False)
    open_alert = models.BooleanField(default=False)
    last_activity = models.DateTimeField()
    due_key = models.DateTimeField(help_text="The open administration's due date; far in the future when none.")
    index_key = models.FloatField(help_text="The lower partner index; above any index when neither has one.")
    # The couple's part of its counselor's inbox count (the header's; assessments/waiting.py):
    # the items that stay until something is written, and the due date after which the open
    # administration is an "overdue" item too (NULL when none is open or it was marked).
    inbox_waiting = models.PositiveIntegerField(default=0)
    inbox_overdue_after = models.DateTimeField(null=True)
    refreshed_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["counselor", "-open_alert", "due_key", "label", "couple"], name="caseload_by_due"),
            models.Index(fields=["counselor", "-open_alert", "index_key", "label", "couple"], name="caseload_by_index"),
            models.Index(
                fields=["counselor", "-open_alert", "-last_activity", "label", "couple"], name="caseload_by_activity"
            ),
        ]

    def __str__(self):
        return f"caseload row of couple {self.couple_id}"


class ComparisonReport(models.Model):
    """The comparison of a completed administration, computed once and stored (``assessments.comparison``).

    Both partners' answers and scores never change once the administration is complete, so the
    comparison page and its PDF read this instead of recomputing the report from the answers.
    Written by the outbox job the completing submit queues; ``manage.py compute_reports``
    recomputes every one (after ``recompute_scores``, or when ``REPORT_VERSION`` changes). What can
    still change (a safety alert's acknowledgement, names, sharing) is read live, never stored.
    """

    assignment = models.OneToOneField(
        Assignment, on_delete=models.CASCADE, primary_key=True, related_name="stored_report"
    )
    version = models.PositiveIntegerField(help_text="comparison.REPORT_VERSION when it was computed.")
    data = models.JSONField()
    computed_at = models.DateTimeField(default=timezone.now)
    # The report laid out as a PDF (assessments/pdf.py), made by a worker when the report is stored
    # and kept with the digest of the HTML it came from: a download whose HTML has the same digest
    # is this file; anything that changed the page (a name, a practice's name) makes a new one.
    pdf = models.BinaryField(null=True, editable=False)
    pdf_digest = models.CharField(max_length=64, blank=True, editable=False)
    pdf_made_at = models.DateTimeField(null=True, editable=False)

    def __str__(self):
        return f"comparison report of assignment {self.assignment_id}"
