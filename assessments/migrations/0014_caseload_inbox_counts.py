import django.db.models.deletion
from django.db import migrations, models


def fill_counts(apps, schema_editor):
    """Each couple's practice and inbox counts, for the rows already there (an empty database has none)."""
    if apps.get_model("clients", "Couple").objects.exists():
        from assessments import caseload  # the live computation: the rows are derived data

        caseload.rebuild()


class Migration(migrations.Migration):
    dependencies = [
        ("assessments", "0013_comparison_report_pdf"),
        ("practice", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="caseloadrow",
            name="inbox_overdue_after",
            field=models.DateTimeField(null=True),
        ),
        migrations.AddField(
            model_name="caseloadrow",
            name="inbox_waiting",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="caseloadrow",
            name="practice",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="practice.practice"
            ),
        ),
        migrations.RunPython(fill_counts, migrations.RunPython.noop),
    ]
