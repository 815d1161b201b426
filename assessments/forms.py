import datetime

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from practice.forms import DateRangeForm, ModelChoiceField
from practice.models import User

from . import caseload
from .answering import DECLINED, MAX_SEQ
from .comparison import ITEM_CATEGORY_FILTERS
from .talk import NOTE_MAX

MAX_DUE_DAYS = 90


class AssignForm(forms.Form):
    due_date = forms.DateField(
        label="Due date",
        help_text="Each partner's link keeps working for a grace period after this day.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args, practice, **kwargs):
        super().__init__(*args, **kwargs)
        self.practice = practice
        self.today = timezone.localdate(timezone=practice.tz)
        default = self.today + datetime.timedelta(days=practice.default_due_days)
        self.fields["due_date"].initial = default
        self.fields["due_date"].widget.attrs.update(
            min=self.today.isoformat(), max=(self.today + datetime.timedelta(days=MAX_DUE_DAYS)).isoformat()
        )

    def clean_due_date(self):
        due = self.cleaned_data["due_date"]
        if due < self.today:
            raise forms.ValidationError("The due date can't be in the past.")
        if due > self.today + datetime.timedelta(days=MAX_DUE_DAYS):
            raise forms.ValidationError(f"Please choose a due date within {MAX_DUE_DAYS} days.")
        return due

    def due_at(self):
        """The end of the chosen day in the practice's time zone."""
        end = datetime.datetime.combine(self.cleaned_data["due_date"], datetime.time(23, 59, 59))
        return timezone.make_aware(end, self.practice.tz)


class ConsentForm(forms.Form):
    understood = forms.BooleanField(
        label=gettext_lazy("I understand and would like to begin."),
        error_messages={"required": gettext_lazy("Please tick the box to say you have read this note.")},
    )
    share_summary = forms.TypedChoiceField(
        label=gettext_lazy("May your counselor later share a summary of your results with your partner?"),
        choices=[
            ("yes", gettext_lazy("Yes, a summary may be shared")),
            ("no", gettext_lazy("No, keep my results between me and my counselor")),
        ],
        coerce=lambda v: v == "yes",
        widget=forms.RadioSelect,
        error_messages={"required": gettext_lazy("Please choose whether a summary may be shared.")},
    )


def _value_field(choices):
    return forms.ChoiceField(choices=choices, required=False)


def _parse_value(raw):
    return None if raw == DECLINED else int(raw)


class SectionForm(forms.Form):
    """One page of answers, posted as a plain form (the page without JavaScript, or "Save and continue").

    Each item has a value field `item-<code>` and a hidden sequence number `seq-<code>`; the page
    renders the sequence number one above the stored one, so a page left open while the same
    answer was changed elsewhere cannot overwrite the newer choice.
    """

    def __init__(self, *args, page, **kwargs):
        super().__init__(*args, **kwargs)
        self.page = page
        for q in page.questions:
            self.fields[f"item-{q.code}"] = _value_field(q.choices)
            self.fields[f"seq-{q.code}"] = forms.IntegerField(required=False, min_value=1, max_value=MAX_SEQ)
            # "I'd like to talk about this": a tick, a private note and their own sequence number.
            self.fields[f"talk-{q.code}"] = forms.BooleanField(required=False)
            self.fields[f"note-{q.code}"] = forms.CharField(required=False, max_length=NOTE_MAX, strip=True)
            self.fields[f"talkseq-{q.code}"] = forms.IntegerField(required=False, min_value=1, max_value=MAX_SEQ)

    def talk_changes(self):
        """[(code, wanted, note, seq)] for every question whose flag or note differs from the stored one."""
        result = []
        for q in self.page.questions:
            wanted = self.cleaned_data.get(f"talk-{q.code}", False)
            note = self.cleaned_data.get(f"note-{q.code}") or ""
            if (wanted, note) != (q.talk, q.note):
                result.append((q.code, wanted, note, self.cleaned_data.get(f"talkseq-{q.code}") or q.talk_seq + 1))
        return result

    def answers(self):
        """[(code, value or None, seq)] for every question answered on this post."""
        result = []
        for q in self.page.questions:
            raw = self.cleaned_data.get(f"item-{q.code}")
            if raw:
                seq = self.cleaned_data.get(f"seq-{q.code}") or q.seq + 1
                result.append((q.code, _parse_value(raw), seq))
        return result


class SaveAnswerForm(forms.Form):
    """One autosaved answer: the item's code, its value (1-5 or "declined") and its sequence number."""

    item = forms.CharField(max_length=16)
    value = forms.CharField(max_length=16)
    seq = forms.IntegerField(min_value=1, max_value=MAX_SEQ)

    def __init__(self, *args, rules, **kwargs):
        super().__init__(*args, **kwargs)
        self.rules = rules

    def clean(self):
        data = super().clean()
        code, raw = data.get("item"), data.get("value")
        if code is None or raw is None:
            return data
        rule = self.rules.get(code)
        if rule is None:
            raise forms.ValidationError(_("This question is not part of your assessment."), code="unknown_item")
        if raw == DECLINED:
            data["answer"] = None
        else:
            try:
                value = int(raw)
            except ValueError:
                value = None
            if value is None or not rule.scale_min <= value <= rule.scale_max:
                raise forms.ValidationError(
                    _("Please choose an answer from %(min)s to %(max)s.")
                    % {"min": rule.scale_min, "max": rule.scale_max},
                    code="off_scale",
                )
            data["answer"] = value
        data["rule"] = rule
        return data


class TalkForm(forms.Form):
    """One autosaved "I'd like to talk about this": the item's code, the tick, the note, a sequence number."""

    item = forms.CharField(max_length=16)
    talk = forms.BooleanField(required=False)
    note = forms.CharField(
        required=False,
        max_length=NOTE_MAX,
        strip=True,
        error_messages={
            "max_length": gettext_lazy("Please keep the note to %(count)s characters.") % {"count": NOTE_MAX}
        },
    )
    seq = forms.IntegerField(min_value=1, max_value=MAX_SEQ)

    def __init__(self, *args, rules, **kwargs):
        super().__init__(*args, **kwargs)
        self.rules = rules

    def clean_item(self):
        rule = self.rules.get(self.cleaned_data["item"])
        if rule is None:
            raise forms.ValidationError(_("This question is not part of your assessment."), code="unknown_item")
        self.cleaned_data["rule"] = rule
        return self.cleaned_data["item"]


# --- The counselor's pages -------------------------------------------------------------------


ITEM_CATEGORY_CHOICE_LABELS = ["Different views", "Unsure", "Shared concern", "Shared strength", "Skipped"]


class FallbackForm(forms.Form):
    """A filter form where an unknown or malformed value quietly becomes that field's default."""

    defaults: dict = {}

    def values(self):
        self.is_valid()
        cleaned = getattr(self, "cleaned_data", {})
        return {name: cleaned.get(name) or default for name, default in self.defaults.items()}


class CaseloadFilterForm(FallbackForm):
    status = forms.ChoiceField(label="Show", choices=caseload.STATUS_CHOICES, required=False)
    q = forms.CharField(
        label="Search",
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Couple or partner name"}),
    )
    sort = forms.ChoiceField(label="Sort by", choices=caseload.SORT_CHOICES, required=False)

    defaults = {"status": "", "q": "", "sort": caseload.DEFAULT_SORT}


class ItemCategoryForm(FallbackForm):
    category = forms.ChoiceField(
        label="Show statements",
        required=False,
        choices=[("", "All statements")]
        + [(key, label) for key, label in zip(ITEM_CATEGORY_FILTERS, ITEM_CATEGORY_CHOICE_LABELS, strict=True)],
    )

    defaults = {"category": ""}


class ConfirmForm(forms.Form):
    """An empty form: the POST itself is the confirmation (a mail scanner's GET changes nothing)."""


class ReleaseForm(forms.Form):
    """Releasing while a safety alert waits needs this box ticked: the page names the risk first."""

    confirm_risk = forms.BooleanField(required=False)


class PauseForm(forms.Form):
    paused = forms.TypedChoiceField(choices=[("1", "Pause"), ("0", "Resume")], coerce=lambda v: v == "1")
    # The administration whose reminders panel an htmx request wants back.
    assignment = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


# --- The practice admin's reports ----------------------------------------------------------------


class PeriodForm(DateRangeForm):
    def period(self):
        """(start, end) with the last 90 days as the default."""
        today = timezone.localdate()
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        end = data.get("end") or today
        start = data.get("start") or min(end, today) - datetime.timedelta(days=89)
        return start, end


class ExportForm(DateRangeForm):
    kind = forms.ChoiceField(
        label="What",
        choices=[
            ("answers", "Answers (long: one row per answer)"),
            ("scores", "Scores (wide: one row per response)"),
            ("completion", "Completion (one row per response)"),
            ("codebook", "Codebook (the instrument's data dictionary)"),
        ],
        widget=forms.RadioSelect,
        initial="scores",
    )
    format = forms.ChoiceField(choices=[("csv", "CSV"), ("xlsx", "Excel (XLSX)")], initial="csv")
    counselor = ModelChoiceField(
        queryset=User.objects.none(), required=False, empty_label="All counselors", label="Counselor"
    )
    deidentified = forms.BooleanField(
        required=False,
        label="De-identified",
        help_text="Ids become pseudonyms that hold only within this file; no names or e-mails; dates without times.",
    )

    def __init__(self, *args, practice, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["counselor"].queryset = User.objects.filter(membership__practice=practice).order_by(
            "full_name", "email"
        )


class OfficeCodeForm(forms.Form):
    """The code a counselor gives a partner for answering on the practice's device."""

    code = forms.CharField(
        label="Your code",
        max_length=12,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "pattern": "[0-9 ]*"}),
        error_messages={"required": "Please enter the 6-digit code your counselor gave you."},
    )

    def clean_code(self):
        code = self.cleaned_data["code"].replace(" ", "")
        if not (len(code) == 6 and code.isdigit()):
            raise forms.ValidationError("The code has 6 digits.")
        return code


class PlanForm(forms.Form):
    """A measurement plan: every N weeks, how many times (or until stopped), from when, and the due period."""

    MAX_START_DAYS = 365

    every_weeks = forms.TypedChoiceField(
        label="Every",
        choices=[(w, f"{w} weeks") for w in (2, 4, 6, 8)],
        coerce=int,
        initial=4,
        error_messages={"invalid_choice": "Please choose every 2, 4, 6 or 8 weeks."},
    )
    administrations = forms.IntegerField(
        label="Number of assessments",
        required=False,
        min_value=1,
        max_value=52,
        initial=6,
        help_text="1 to 52. Leave empty and tick “Until stopped” to go on until you end the plan.",
        error_messages={
            "min_value": "Please plan at least 1 assessment.",
            "max_value": "A plan holds at most 52 assessments.",
        },
    )
    until_stopped = forms.BooleanField(label="Until stopped", required=False)
    start_on = forms.DateField(
        label="First assessment on",
        help_text="Invitations go out that morning, on the practice's clock.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    due_days = forms.IntegerField(
        label="Due period (days)",
        min_value=1,
        help_text="How long each partner has to answer; it ends before the next one starts.",
        error_messages={"min_value": "The due period is at least 1 day."},
    )

    def __init__(self, *args, practice, started=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.practice = practice
        self.started = started  # the plan has made an administration: its start day can no longer change
        self.today = timezone.localdate(timezone=practice.tz)
        self.fields["start_on"].initial = self.today
        self.fields["start_on"].widget.attrs.update(
            min=self.today.isoformat(), max=(self.today + datetime.timedelta(days=self.MAX_START_DAYS)).isoformat()
        )
        self.fields["due_days"].initial = min(practice.default_due_days, 14)
        self.fields["due_days"].widget.attrs.update(min=1, max=56)
        if started:
            self.fields["start_on"].required = False
            self.fields["start_on"].disabled = True

    def clean_start_on(self):
        start = self.cleaned_data.get("start_on")
        if self.started:
            return None
        if start < self.today:
            raise forms.ValidationError("The first assessment can't be in the past: choose today or later.")
        if start > self.today + datetime.timedelta(days=self.MAX_START_DAYS):
            raise forms.ValidationError("Please start within a year.")
        return start

    def clean(self):
        data = super().clean()
        count, until = data.get("administrations"), data.get("until_stopped")
        if "administrations" in data:
            if count is None and not until:
                self.add_error("administrations", "Please give a number of assessments, or tick “Until stopped”.")
            elif count is not None and until:
                self.add_error("administrations", "Give a number of assessments or tick “Until stopped”, not both.")
        weeks, due = data.get("every_weeks"), data.get("due_days")
        if weeks and due and due > weeks * 7:
            self.add_error("due_days", f"Every {weeks} weeks leaves at most {weeks * 7} days to answer.")
        return data


class PlanActionForm(forms.Form):
    action = forms.ChoiceField(choices=[("pause", "Pause"), ("resume", "Resume"), ("end", "End")])


class DeviceForm(forms.Form):
    action = forms.ChoiceField(choices=[("mark", "Use this browser as the practice's tablet"), ("unmark", "Stop")])
