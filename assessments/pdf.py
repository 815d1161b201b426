"""The comparison report laid out on A4 pages by WeasyPrint, from the comparison's own template.

Laying out six pages takes WeasyPrint more than a second, so a counselor rarely waits for it:

1. When both partners have finished, the ``comparison_report`` job stores the report and queues a
   ``comparison_pdf`` job, which lays the PDF out and keeps it with the digest of the HTML it came
   from (``ComparisonReport.pdf``, ``pdf_digest``).
2. A download renders the report's HTML (milliseconds), and when its digest is the stored one
   sends the stored file. The HTML holds everything the PDF shows (names, pronouns, the practice's
   name, the languages answered in), so a file that no longer matches the page is never sent: a
   renamed partner or practice gets a new PDF, laid out during that download and stored for the
   next one. The footer's "Generated" time is left out of the digest; it says when the file was made.

WeasyPrint is imported when the first PDF is laid out (it takes a while to load), and the print
stylesheet (static/css/site.css: its ``@page`` rules, "Page X of Y" and the practice's footer) is
parsed once per process, again only when the file changes.
"""

import functools
import hashlib
import os

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template import defaultfilters
from django.template.loader import render_to_string
from django.utils import timezone, translation

from . import comparison
from .models import Assignment, ComparisonReport

STYLESHEET = "css/site.css"
# Stands for the footer's "Generated" time in the HTML whose digest is compared.
GENERATED = "generated-at-c3f1e2"


@functools.cache
def _weasyprint():
    import weasyprint  # noqa: PLC0415 - loaded with the first PDF, not with every web process

    return weasyprint


@functools.lru_cache(maxsize=1)
def _stylesheet(path, modified):
    return _weasyprint().CSS(filename=path)


def stylesheet():
    path = finders.find(STYLESHEET)
    return _stylesheet(path, os.stat(path).st_mtime_ns)


def report_html(assignment):
    """The report's printable HTML with GENERATED in its footer, or None before both finished.

    Drawn in the site's language and the practice's time zone, with no request, so that the web
    page and the worker draw the same HTML."""
    practice = assignment.couple.practice
    with timezone.override(practice.tz), translation.override(settings.LANGUAGE_CODE):
        report, context = comparison.page_context(assignment)
        if report is None:
            return None
        context.update(
            {
                "base_template": "clients/pdf_base.html",
                "pdf": True,
                "groups": report.grouped(),
                "practice": practice,
                "generated": GENERATED,
            }
        )
        return render_to_string("clients/comparison.html", context)


def digest(html):
    return hashlib.sha256(html.encode()).hexdigest()


def document(html, practice, now=None):
    """The laid-out document (``.pages``, ``.write_pdf()``) of report_html's HTML, generated ``now``."""
    now = timezone.localtime(now or timezone.now(), practice.tz)
    html = html.replace(GENERATED, defaultfilters.date(now, "j M Y, H:i"))
    return _weasyprint().HTML(string=html, base_url=settings.SITE_URL).render(stylesheets=[stylesheet()])


def _store(assignment, html, content, now):
    ComparisonReport.objects.filter(assignment=assignment).update(pdf=content, pdf_digest=digest(html), pdf_made_at=now)


def file_of(assignment):
    """The report's PDF as bytes: the stored file when it matches the report's HTML, else a new one
    (stored for the next download). None before both partners finished."""
    html = report_html(assignment)
    if html is None:
        return None
    stored = ComparisonReport.objects.filter(assignment=assignment, pdf_digest=digest(html))
    content = stored.values_list("pdf", flat=True).first()
    if content is not None:
        return bytes(content)
    now = timezone.now()
    content = document(html, assignment.couple.practice, now).write_pdf()
    _store(assignment, html, content, now)
    return content


def prepare(assignment_id):
    """Lay out and store a completed administration's PDF ahead of its first download (the
    ``comparison_pdf`` job). Returns False when there is nothing to lay out or it is already stored."""
    assignment = (
        Assignment.objects.select_related("instrument", "couple__practice")
        .filter(pk=assignment_id, status=Assignment.Status.COMPLETED)
        .first()
    )
    if assignment is None or not ComparisonReport.objects.filter(assignment=assignment).exists():
        return False
    html = report_html(assignment)
    if html is None or ComparisonReport.objects.filter(assignment=assignment, pdf_digest=digest(html)).exists():
        return False
    now = timezone.now()
    _store(assignment, html, document(html, assignment.couple.practice, now).write_pdf(), now)
    return True
