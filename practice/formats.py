"""How every file the site writes spells times and free text, so that exports and the audit log agree."""

import datetime

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def utc_iso(value):
    """An aware datetime as ISO 8601 in UTC to the second ("2026-12-01T21:49:34Z"); "" for None."""
    if value is None:
        return ""
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def spreadsheet_safe(text):
    """Text a spreadsheet will not run as a formula: a leading = + - @ gets a quote in front.

    Only for free text people typed (an e-mail at sign-in, a name); ids and codes never start so.
    """
    if isinstance(text, str) and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def attachment(response, name):
    """Mark a response as a download named ``name``."""
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# The dates a period (statistics, audit log, exports) may name. Python's own range (years 1 to
# 9999) overflows as soon as a day is added to its end or a time zone applied to its start; no
# record of this site is outside these.
EARLIEST_DATE = datetime.date(1900, 1, 1)
LATEST_DATE = datetime.date(2199, 12, 31)
