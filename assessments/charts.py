"""Server-drawn SVG charts: no JavaScript, printable, and described for screen readers.

Every chart has a <title> and <desc> (referenced by aria-labelledby) and is always shown next
to a table of the same numbers. Colours are literal so the PDF renderer draws them too; partner
B's line is dashed so the partners differ without colour.
"""

import functools

from django.dispatch import receiver
from django.template.loader import render_to_string
from django.utils import dateformat, timezone, translation
from django.utils.autoreload import file_changed
from django.utils.functional import Promise
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from . import scoring

PARTNER_COLORS = {"A": "#2f5d62", "B": "#a0522d"}
PARTNER_DASH = {"A": "", "B": "6 4"}
BAND_ZONES = (  # (from, to, fill): needs attention, mixed, strong
    (0, 50, "#fbeaea"),
    (50, 70, "#fdf3e1"),
    (70, 100, "#e8f4ec"),
)
GRID = "#9aa5b1"
INK = "#1f2933"
ATTENTION = "#b83232"


# Drawn charts kept per process (``drawn_once``): a few KB of SVG each, in the web process's own
# memory only, never in Redis or on disk (docs/security.md).
DRAWN_CACHE_SIZE = 2048


class _Items(tuple):
    """A dict's items, frozen: hashable, and turned back into the dict it was."""


def _freeze(value):
    if isinstance(value, Promise):  # a lazy translation: the text in the language being drawn
        return str(value)
    if isinstance(value, dict):
        return _Items(sorted((key, _freeze(v)) for key, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value):
    if isinstance(value, _Items):
        return {key: _thaw(v) for key, v in value}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def drawn_once(draw):
    """Draw each chart once per process for its arguments: a chart is a pure function of them.

    A completed administration never changes, so the couple page and the comparison draw the same
    charts on every view; the arguments (ids, titles, names, every value plotted) are the cache's
    key, so a chart whose numbers or names changed in any way is drawn anew, never shown stale.
    """

    @functools.lru_cache(maxsize=DRAWN_CACHE_SIZE)
    def cached(frozen):
        return draw(**_thaw(frozen))

    @functools.wraps(draw)
    def drawer(**kwargs):
        return cached(_freeze(kwargs))

    drawer.cache_clear = cached.cache_clear
    drawer.cache_info = cached.cache_info
    return drawer


@functools.lru_cache(maxsize=DRAWN_CACHE_SIZE)
def _change_over_time(frozen, language):
    return render_to_string("clients/_change_over_time.html", _thaw(frozen))


def change_over_time(*, charts, changes, names, one_administration, explain):
    """The couple page's "Change over time" section as HTML, rendered once per process for its values.

    Everything it shows comes from the couple's completed administrations (``trend_charts``,
    ``comparison.describe_changes``), so its values are the key, as for the charts themselves; the
    language is part of it too.
    """
    context = {
        "charts": charts,
        "changes": changes,
        "names": names,
        "one_administration": one_administration,
        "explain": explain,
    }
    return _change_over_time(_freeze(context), translation.get_language())


@receiver(file_changed)
def _template_edited(sender, file_path, **kwargs):
    """Under the development server an edited template shows at the next view, as without the cache."""
    if file_path.suffix == ".html":
        _change_over_time.cache_clear()


def _num(value):
    return f"{value:.1f}"


def _whole(value):
    """The one rounding rule for displayed scores (scoring.whole), so a chart and its table agree."""
    return scoring.whole(value)


def _frame(chart_id, title, desc, width, height, body):
    return format_html(
        '<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        'aria-labelledby="{id}-title {id}-desc" preserveAspectRatio="xMinYMin meet" '
        'xmlns="http://www.w3.org/2000/svg">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>{body}</svg>',
        w=width,
        h=height,
        id=chart_id,
        title=title,
        desc=desc,
        body=body,
    )


@drawn_once
def trend_chart(*, chart_id, title, desc, labels, series, width=340, height=200, compact=False, last_notes=None):
    """Lines over administrations on a 0-100 scale, with the three bands shaded behind.

    ``labels`` names each administration (x axis); ``series`` is a list of
    ``(position, name, [value or None per label])``. A missing value breaks the line.
    ``last_notes`` ({position: text}) labels each partner's latest point, e.g. with its
    reliable-change label.
    """
    last_notes = last_notes or {}
    # Charts are drawn at their own size and only ever shrink (to a phone's width): the text sizes
    # below stay at 12 px or more there (tests/e2e/test_every_page.py measures them as drawn).
    left, right, top, bottom = (30, 10, 10, 22) if compact else (36, 14, 12, 28)
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(labels)

    def x(i):
        return left + (plot_w / 2 if n == 1 else i * plot_w / (n - 1))

    def y(v):
        return top + (100 - v) * plot_h / 100

    parts = []
    for lo, hi, fill in BAND_ZONES:
        parts.append(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>',
                left,
                _num(y(hi)),
                plot_w,
                _num(y(lo) - y(hi)),
                fill,
            )
        )
    for tick in (0, 50, 70, 100):
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}" stroke-width="0.6"/>'
                '<text x="{}" y="{}" font-size="{}" text-anchor="end" fill="{}">{}</text>',
                left,
                left + plot_w,
                _num(y(tick)),
                _num(y(tick)),
                GRID,
                left - 4,
                _num(y(tick) + 4),
                12 if compact else 14,
                INK,
                tick,
            )
        )
    step = max(1, n // (3 if compact else 6))
    for i, label in enumerate(labels):
        if i % step == 0 or i == n - 1:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" font-size="{}" text-anchor="{}" fill="{}">{}</text>',
                    _num(x(i)),
                    height - (5 if compact else 8),
                    12 if compact else 14,
                    "middle" if n == 1 else "start" if i == 0 else "end" if i == n - 1 else "middle",
                    INK,
                    label,
                )
            )
    for position, name, values in series:
        color, dash = PARTNER_COLORS[position], PARTNER_DASH[position]
        segment = []
        segments = [segment]
        for i, value in enumerate(values):
            if value is None:
                segment = []
                segments.append(segment)
            else:
                segment.append(f"{_num(x(i))},{_num(y(value))}")
        for points in segments:
            if len(points) > 1:
                parts.append(
                    format_html(
                        '<polyline points="{}" fill="none" stroke="{}" stroke-width="{}" stroke-dasharray="{}"/>',
                        " ".join(points),
                        color,
                        2 if compact else 2.5,
                        dash,
                    )
                )
        last = max((i for i, v in enumerate(values) if v is not None), default=None)
        for i, value in enumerate(values):
            if value is not None:
                note = f" ({last_notes[position]})" if i == last and position in last_notes else ""
                parts.append(
                    format_html(
                        '<circle cx="{}" cy="{}" r="{}" fill="{}"><title>{}, {}: {}{}</title></circle>',
                        _num(x(i)),
                        _num(y(value)),
                        3 if compact else 4,
                        color,
                        name,
                        labels[i],
                        _whole(value),
                        note,
                    )
                )
    return _frame(chart_id, title, desc, width, height, mark_safe("".join(parts)))  # noqa: S308 - built by format_html


@drawn_once
def pair_bars(*, chart_id, title, desc, rows, names, width=340):
    """Horizontal bars, partner A above partner B, per score on 0-100 with shaded bands.

    ``rows`` are ``(label, a, b, gap)``; a ``gap`` of True adds a "gap" mark on the right.
    """
    left, right, row_h, bar_h = 8, 80, 62, 14
    plot_w = width - left - right
    height = row_h * len(rows) + 24

    def x(v):
        return left + v * plot_w / 100

    parts = []
    for r, (label, a, b, gap) in enumerate(rows):
        top = r * row_h
        parts.append(
            format_html(
                '<text x="{}" y="{}" font-size="14" font-weight="600" fill="{}">{}</text>', left, top + 14, INK, label
            )
        )
        for k, (position, value) in enumerate((("A", a), ("B", b))):
            bar_y = top + 20 + k * (bar_h + 3)
            for lo, hi, fill in BAND_ZONES:
                parts.append(
                    format_html(
                        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>',
                        _num(x(lo)),
                        bar_y,
                        _num(x(hi) - x(lo)),
                        bar_h,
                        fill,
                    )
                )
            if value is None:
                parts.append(
                    format_html(
                        '<text x="{}" y="{}" font-size="14" fill="{}">{}: not enough answers</text>',
                        left + 4,
                        bar_y + 11,
                        INK,
                        names[position],
                    )
                )
                continue
            parts.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>'
                    '<text x="{}" y="{}" font-size="14" fill="{}">{} {}</text>',
                    left,
                    bar_y + 2,
                    _num(max(x(value) - left, 1)),
                    bar_h - 4,
                    PARTNER_COLORS[position],
                    names[position],
                    _whole(value),
                    _num(left + plot_w + 4),
                    bar_y + 11,
                    INK,
                    position,
                    _whole(value),
                )
            )
        if gap:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" font-size="14" font-weight="700" fill="{}" text-anchor="end">gap</text>',
                    width - 2,
                    top + 20 + bar_h + 3 + 11,  # beside partner B's value, clear of a long label
                    ATTENTION,
                )
            )
    axis_y = row_h * len(rows) + 16
    for tick in (0, 50, 70, 100):
        parts.append(
            format_html(
                '<text x="{}" y="{}" font-size="14" text-anchor="middle" fill="{}">{}</text>',
                _num(x(tick)),
                axis_y,
                INK,
                tick,
            )
        )
    return _frame(chart_id, title, desc, width, height, mark_safe("".join(parts)))  # noqa: S308 - built by format_html


def _date_label(when):
    return dateformat.format(timezone.localtime(when), "j M Y")


def trend_charts(trend, names, changes=None):
    """The couple page's charts: the Connection Index large, then one small chart per domain.

    ``trend`` is ``assessments.comparison.trend(...)``. Each chart comes with the rows of the
    table that repeats its numbers: ``(administration label, A score, B score)``. ``changes``
    (``comparison.latest_changes``) labels each partner's latest point with its reliable change.
    """
    changes = changes or {}
    points = trend["points"]
    if not points:
        return []
    labels = [_date_label(p["assignment"].assigned_at) for p in points]
    result = []
    for n, (key, title) in enumerate(trend["keys"]):
        values = {pos: [p.get(pos, {}).get(key) for p in points] for pos in ("A", "B")}
        if not any(v is not None for vs in values.values() for v in vs):
            continue
        big = n == 0
        chart_id = f"trend-{key}"
        result.append(
            {
                "key": key,
                "title": title,
                "big": big,
                "svg": trend_chart(
                    chart_id=chart_id,
                    title=f"{title} over time",
                    desc=f"{title} of {names.get('A', 'A')} (solid line) and {names.get('B', 'B')} (dashed line) "
                    f"at each administration, on a 0 to 100 scale. The same numbers are in the table.",
                    labels=labels,
                    series=[(pos, names.get(pos, pos), values[pos]) for pos in ("A", "B")],
                    width=340 if big else 240,
                    height=200 if big else 130,
                    compact=not big,
                    last_notes={pos: entries[key]["text"] for pos, entries in changes.items() if key in entries},
                ),
                "rows": list(zip(labels, values["A"], values["B"], strict=True)),
            }
        )
    return result


def comparison_bars(report, names):
    """Side-by-side bars for the comparison page: the index, then every compared domain."""
    rows = [(r.title, r.a, r.b, r.gap) for r in [report.index, *report.domains]]
    return pair_bars(
        chart_id="domain-bars",
        title="Scores side by side",
        desc=f"Bars for {names['A']} (upper, darker) and {names['B']} (lower) on a 0 to 100 scale for the "
        "Connection Index and each domain, over shaded bands (below 50, 50 to 69, 70 or more). "
        "Gaps larger than measurement error are marked. The same numbers are in the table.",
        rows=rows,
        names=names,
    )


def shared_bars(summary):
    """Side-by-side bars for the summary released to the couple."""
    rows = [(r.title, r.a, r.b, r.gap) for r in [summary.index, *summary.domains]]
    return pair_bars(
        chart_id="shared-bars",
        title="Your scores side by side",
        desc=f"Bars for {summary.names['A']} (upper) and {summary.names['B']} (lower) on a 0 to 100 scale "
        "for each area. The same numbers are in the table.",
        rows=rows,
        names=summary.names,
    )
