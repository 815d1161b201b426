from django import forms

from assessments.comparison import ITEM_CATEGORY_FILTERS

from . import caseload
from .models import Couple

ITEM_CATEGORY_CHOICE_LABELS = ["Different views", "Unsure", "Shared concern", "Shared strength", "Skipped"]


class CoupleForm(forms.ModelForm):
    a_first_name = forms.CharField(label="Partner A first name", max_length=80)
    a_last_name = forms.CharField(label="Partner A last name", max_length=80, required=False)
    a_email = forms.EmailField(label="Partner A e-mail")
    b_first_name = forms.CharField(label="Partner B first name", max_length=80)
    b_last_name = forms.CharField(label="Partner B last name", max_length=80, required=False)
    b_email = forms.EmailField(label="Partner B e-mail")

    class Meta:
        model = Couple
        fields = ["label"]

    def clean(self):
        data = super().clean()
        if data.get("a_email") and data.get("a_email", "").lower() == data.get("b_email", "").lower():
            self.add_error("b_email", "Each partner needs their own e-mail address: their answers are private.")
        return data


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


class NotesForm(forms.ModelForm):
    class Meta:
        model = Couple
        fields = ["notes"]
        labels = {"notes": "Notes"}
        widgets = {"notes": forms.Textarea(attrs={"rows": 6})}


class ArchiveForm(forms.Form):
    action = forms.ChoiceField(choices=[("archive", "Archive"), ("unarchive", "Bring back to the caseload")])
