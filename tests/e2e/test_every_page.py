"""Every page of the site, opened by the person who sees it, at 360, 390 and 1280 px wide.

The list of pages is not written here: it is every URL pattern of the permission matrix
(tests/security/matrix.py walks the URLconf and refuses an unclassified one) that answers GET. Each
is opened as the first of anonymous, partner, counselor and admin whose matrix row lets them in, so
a new page is covered the day it gets its matrix row. A URL that is not a page (an action that only
redirects, a file download) must be listed in NOT_PAGES with the reason; a listed URL that starts
rendering a page fails the test so the list cannot go stale.

On each page, at each width, a person would notice:

- sideways scrolling (the document is wider than the window), or a table cut off inside a box
  that scrolls sideways;
- table text squeezed into a column a few letters wide;
- text drawn smaller than 12 px (SVG chart labels are measured as drawn, after the chart's scaling);
- a keyboard focus hidden behind a sticky or fixed bar (walked with Tab and Shift+Tab);
- an image, icon or chart with no text alternative;
- a page with no ``width=device-width`` viewport (a phone would shrink it to fit);
- and axe-core's serious or critical findings (at the phone width).

With SCREENSHOTS=1 each page at each width is saved under test-results/screenshots/every-page/.

One browser; each page is loaded once and resized through the three widths.
"""

import os
import re
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from assessments.workflows import release_summary
from practice.models import Job
from tests.clients.factories import answer, finished_assignment
from tests.e2e.conftest import SHOTS, assert_accessible
from tests.security import matrix
from tests.security.matrix import MatrixWorld

pytestmark = pytest.mark.e2e

WIDTHS = ({"width": 360, "height": 740}, {"width": 390, "height": 844}, {"width": 1280, "height": 900})
AXE_WIDTH = 390

# Who opens a page: the first of these its matrix row lets in.
VISITORS = ("anonymous", "partner_a", "counselor", "admin")

# Rows whose page needs another party or other arguments than the matrix world's open administration.
OPENED_AS = {
    # A partner's own results and the released summary exist once they have finished.
    "assessments:results": ("finished_a", {"response_id": "finished_response.pk"}),
    "assessments:shared_summary": ("finished_a", {"response_id": "finished_response.pk"}),
    # The support page is shown to a partner whose answers ask for it.
    "assessments:support": ("finished_a", {"response_id": "finished_response.pk"}),
    # The comparison of a finished administration, with both partners' answers.
    "assessments:comparison": ("counselor", {"assignment_pk": "finished_assignment.pk"}),
    "assessments:comparison_pdf": ("counselor", {"assignment_pk": "finished_assignment.pk"}),
}

# GET URLs that are not pages, and why.
NOT_PAGES = {
    "home": "sends each person on to their start page",
    "healthz": "a health check for the load balancer (JSON)",
    "readyz": "a readiness check for the load balancer (JSON)",
    "keep_alive": "the session script's keep-alive call (JSON)",
    "assessments:open_link": "a personal link redirects to the partner's page without the token",
    "assessments:comparison_pdf": "the comparison as a PDF download",
    "assessments:export_file": "a finished export's file download",
    "assessments:codebook": "the codebook download",
    "practice:audit_export": "the audit log as a CSV download",
    "assessments:couple_record": "everything held on one couple, as a download",
    "two_factor_verify": "only reached mid-way through a two-factor sign-in (tests/security/test_two_factor.py)",
    "two_factor_recovery_codes": "only reached mid-way through a two-factor sign-in",
    "admin:*": "Django's own admin for operators, styled by Django",
}

# Listed above, and not requested at all.
PREFIXES_NOT_CHECKED = {"admin:*"}

# The error pages a person can land on.
ERROR_PAGES = (
    ("not found", "anonymous", "/no-such-page/", 404),
    ("not found, signed in", "counselor", "/couples/999999/", 404),
    ("forbidden", "counselor", "/practice/", 403),
    ("expired link", "anonymous", "/a/{expired_token_a}/", 410),
)


class PageWorld(MatrixWorld):
    """The matrix world, its partner A part-way through, plus an earlier administration both finished."""

    def __init__(self):
        super().__init__()
        answer(self.response_a, level=4, finish=False, upto=12)
        self.finished_assignment, responses, tokens = finished_assignment(
            self.couple, levels=(4, 3), overrides=({"S7": 3}, None), days_ago=3
        )
        self.finished_response = responses["A"]
        self.finished_token = tokens["A"]
        release_summary(self.finished_assignment, responses)
        Job.objects.all().delete()
        # Staff sessions made now, before the browser's event loop runs in this thread.
        self.sessions = {}
        for party, user in (("counselor", self.owner), ("admin", self.admin)):
            client = Client()
            client.force_login(user)
            self.sessions[party] = client.cookies[settings.SESSION_COOKIE_NAME].value


@dataclass
class Target:
    name: str
    party: str
    path: str
    status: int = 200
    page: bool = True  # False: listed in NOT_PAGES, and must still not render a page


def targets(world):
    patterns = {p.key: p for p in matrix.url_patterns()}
    found, skipped = [], {}
    for row in matrix.rows():
        if "GET" not in row.methods:
            skipped[row.name] = "takes only POST: an action, whose result page is covered"
            continue
        if row.name in PREFIXES_NOT_CHECKED:
            skipped[row.name] = NOT_PAGES[row.name]
            continue
        party, args = OPENED_AS.get(row.name, (None, {}))
        if party is None:
            party = next((p for p in VISITORS if row.outcome(p, "GET") == "ok"), None)
        if party is None and row.name in NOT_PAGES:
            skipped[row.name] = NOT_PAGES[row.name]
            continue
        assert party is not None, f"{row.name}: no one of {VISITORS} may open it; say who in OPENED_AS"
        row = matrix.Row(row.name, row.methods, row.expected, {**row.args, **args})
        url = matrix.url_for(world, row, patterns[row.name])
        found.append(Target(row.name, party, url, page=row.name not in NOT_PAGES))
        if row.name in NOT_PAGES:
            skipped[row.name] = NOT_PAGES[row.name]
    for name, party, path, status in ERROR_PAGES:
        found.append(Target(name, party, path.format(**vars(world)), status))
    return found, skipped


def open_as(new_context, base, world, party, broken):
    context = new_context(WIDTHS[0])
    if party in world.sessions:
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": world.sessions[party], "url": base}])
    page = context.new_page()
    # What a page asks for on its own (styles, scripts, icons, /favicon.ico) must all be there.
    page.on(
        "response",
        lambda r: (
            broken.append(f"{r.status} {r.url} (on {page.url})")
            if r.status >= 400 and r.request.resource_type != "document"
            else None
        ),
    )
    token = {"partner_a": world.token_a, "finished_a": world.finished_token}.get(party)
    if token is not None:
        page.goto(f"{base}{reverse('assessments:open_link', args=[token])}")
        button = page.locator("form button[type=submit]", has_text="continue")
        if button.count():
            button.first.click()
            page.wait_for_load_state()
    return page


# One evaluation per page and width: what a person would see wrong, as readable lines.
LOOK = """
() => {
  const problems = [];
  const W = window.innerWidth;
  const describe = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += '#' + el.id;
    const cls = (el.getAttribute('class') || '').trim().split(/\\s+/).filter(Boolean).slice(0, 2);
    if (cls.length) s += '.' + cls.join('.');
    const text = (el.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 40);
    return text ? `${s} "${text}"` : s;
  };
  const shown = (el) => {
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const cs = getComputedStyle(e);
      if (cs.display === 'none' || cs.visibility === 'hidden' || cs.opacity === '0') return false;
      if (e.tagName === 'DETAILS' && !e.open && e !== el) {
        // Only a closed <details>' summary is drawn.
        const summary = e.querySelector(':scope > summary');
        if (!summary || !summary.contains(el)) return false;
      }
    }
    return true;
  };
  const meta = document.querySelector('meta[name=viewport]');
  if (!meta || !/width=device-width/.test(meta.content)) problems.push('no width=device-width viewport meta');
  const sw = document.documentElement.scrollWidth;
  if (sw > W) {
    const wide = [];
    for (const el of document.body.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.right <= W + 0.5) continue;
      const p = el.parentElement && el.parentElement.getBoundingClientRect();
      if (p && p.right > W + 0.5) continue;  // the outermost element that sticks out
      let clipped = false;
      for (let e = el.parentElement; e; e = e.parentElement) {
        const ox = getComputedStyle(e).overflowX;
        if (ox !== 'visible' && e !== document.body && e !== document.documentElement) { clipped = true; break; }
      }
      if (!clipped) wide.push(`${describe(el)} (right edge ${Math.round(r.right)})`);
    }
    problems.push(`sideways scrolling: document ${sw} px wide in a ${W} px window: ${wide.slice(0, 4).join('; ')}`);
  }
  // A table in a box that scrolls sideways hides its last columns on a phone (a cut "Together").
  for (const box of document.querySelectorAll('.table-scroll, .chart-wrap')) {
    if (shown(box) && box.scrollWidth > box.clientWidth + 1) {
      problems.push(`cut off sideways: ${describe(box)} holds ${box.scrollWidth} px in ${box.clientWidth} px`);
    }
  }
  const small = new Map();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim()) continue;
    const el = node.parentElement;
    if (!el || el.closest('script, style, noscript, template, option, title')) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const box = range.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1) continue;  // visually hidden (for screen readers)
    if (!shown(el)) continue;
    let size = parseFloat(getComputedStyle(el).fontSize);
    if (el instanceof SVGElement && el.getScreenCTM()) {
      const m = el.getScreenCTM();
      size *= Math.hypot(m.a, m.b);
    }
    if (size < 11.95) {
      const key = describe(el);
      if (!small.has(key)) small.set(key, size);
    }
  }
  if (small.size) {
    const list = [...small].slice(0, 5).map(([k, s]) => `${k} at ${s.toFixed(1)} px`);
    problems.push(`text under 12 px (${small.size}): ${list.join('; ')}`);
  }
  const squeezed = [];
  for (const cell of document.querySelectorAll('td, th')) {
    const text = (cell.innerText || '').trim();
    if (text.length < 16 || !shown(cell)) continue;
    const cs = getComputedStyle(cell);
    const high = cell.getBoundingClientRect().height - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom);
    const lineHeight = parseFloat(cs.lineHeight) || 1.5 * parseFloat(cs.fontSize);
    const lines = Math.max(1, Math.round(high / lineHeight));
    const perLine = text.length / lines;
    // A heading may wrap to a word a line; a cell's text under eight letters a line is a column of letters.
    if (perLine < (cell.tagName === 'TH' ? 5 : 8)) {
      squeezed.push(`${describe(cell)} (${Math.round(perLine)} letters a line)`);
    }
  }
  if (squeezed.length) {
    const few = squeezed.slice(0, 3).join('; ');
    problems.push(`table text squeezed into a column a few letters wide (${squeezed.length}): ${few}`);
  }
  const named = (el) => el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
    || (el.querySelector && el.querySelector(':scope > title'));
  for (const el of document.querySelectorAll('img, svg, [role=img], input[type=image], canvas')) {
    if (el.closest('[aria-hidden=true]') || ['presentation', 'none'].includes(el.getAttribute('role'))) continue;
    if (el.tagName === 'svg' && el.parentElement && el.parentElement.closest('svg')) continue;
    const ok = (el.tagName === 'IMG' || el.tagName === 'INPUT') ? el.hasAttribute('alt') || named(el) : named(el);
    if (!ok) problems.push(`an image without a text alternative: ${describe(el)}`);
  }
  return problems;
}
"""

# Whether the focused element is under one of the sticky or fixed bars (found once per page).
FOCUS = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return {done: true};
  let r = el.getBoundingClientRect();
  if ((r.width < 4 || r.height < 4) && el.labels && el.labels[0]) r = el.labels[0].getBoundingClientRect();
  if (r.width === 0 && r.height === 0) return {};
  // A region taller than half the window (a scrolling table) cannot always clear a bar; it must
  // only not vanish behind one.
  const tall = r.height > window.innerHeight / 2;
  for (const bar of window.__bars || []) {
    const cs = getComputedStyle(bar);
    if (bar.contains(el) || el.contains(bar) || cs.display === 'none' || cs.visibility === 'hidden') continue;
    const b = bar.getBoundingClientRect();
    if (b.width === 0 || b.height === 0) continue;
    const x = Math.min(r.right, b.right) - Math.max(r.left, b.left);
    const y = Math.min(r.bottom, b.bottom) - Math.max(r.top, b.top);
    const shownPart = Math.min(r.bottom, window.innerHeight) - Math.max(r.top, 0);
    if (x > 0.5 && y > 0.5 && (!tall || y >= shownPart - 0.5)) {
      const name = (el.getAttribute('aria-label') || el.textContent || el.value || el.name || el.tagName)
        .trim().replace(/\\s+/g, ' ').slice(0, 40);
      const barName = '.' + (bar.getAttribute('class') || bar.tagName).trim().split(/\\s+/)[0];
      return {hidden: `${el.tagName.toLowerCase()} "${name}" under ${barName} (${Math.round(y)} px covered)`};
    }
  }
  return {};
}
"""

FIND_BARS = """
() => {
  window.__bars = [...document.body.querySelectorAll('*')].filter((e) => {
    const cs = getComputedStyle(e);
    return (cs.position === 'sticky' || cs.position === 'fixed') && cs.display !== 'none';
  });
  return window.__bars.length;
}
"""

MAX_TAB_STOPS = 50


def focus_problems(page):
    """Tab through the page and back: every focused element must be clear of sticky and fixed bars."""
    if not page.evaluate(FIND_BARS):
        return []
    problems = []
    page.evaluate("() => { window.scrollTo(0, 0); document.activeElement && document.activeElement.blur(); }")
    for key in ("Tab", "Shift+Tab"):
        for _ in range(MAX_TAB_STOPS):
            page.keyboard.press(key)
            seen = page.evaluate(FOCUS)
            if seen.get("done"):
                break
            hidden = seen.get("hidden")
            if hidden and not any(hidden in p for p in problems):
                problems.append(f"focus hidden ({key}): {hidden}")
    return problems


def check(page, target, problems):
    for viewport in WIDTHS:
        page.set_viewport_size(viewport)
        where = f"{target.name} ({target.party}, {target.path}) at {viewport['width']} px"
        found = page.evaluate(LOOK) + focus_problems(page)
        problems.extend(f"{where}: {p}" for p in found)
        if os.environ.get("SCREENSHOTS") == "1":
            name = re.sub(r"[^a-z0-9]+", "-", target.name.lower())
            page.screenshot(path=str(SHOTS / "every-page" / f"{name}-{viewport['width']}.png"), full_page=True)
        if viewport["width"] == AXE_WIDTH:
            try:
                assert_accessible(page, where)
            except AssertionError as error:
                problems.append(str(error))


@pytest.fixture
def page_world(transactional_db):
    return PageWorld()


def test_every_page_reads_well_at_phone_and_desk_widths(page_world, server, new_context):
    world, base = page_world, server.url
    found, skipped = targets(world)
    pages, problems, opened, broken = {}, [], [], []
    for target in found:
        if target.party not in pages:
            pages[target.party] = open_as(new_context, base, world, target.party, broken)
        page = pages[target.party]
        where = f"{target.name} ({target.party}, {target.path})"
        # Asked first without following redirects, in a copy of the visitor's browser state (a
        # personal link opened here must not change who the visitor is).
        probe = new_context(WIDTHS[0], storage_state=page.context.storage_state())
        answer_ = probe.request.get(base + target.path, max_redirects=0)
        kind = answer_.headers.get("content-type", "")
        renders = (
            answer_.status == target.status
            and "text/html" in kind
            and "attachment" not in answer_.headers.get("content-disposition", "")
        )
        probe.close()
        if not target.page:
            if renders:
                problems.append(f"{where} renders a page now: remove it from NOT_PAGES so it is checked")
            continue
        if not renders:
            went = answer_.headers.get("location", "")
            problems.append(
                f"{where}: {answer_.status} {kind} {went}, not a {target.status} page. If it is not a page, list it in "
                f"NOT_PAGES with the reason; if it needs another visitor or arguments, say so in OPENED_AS"
            )
            continue
        page.set_viewport_size(WIDTHS[0])
        page.goto(base + target.path)
        opened.append(target.name)
        check(page, target, problems)
    assert not problems, f"{len(problems)} problems on {len(opened)} pages:\n" + "\n".join(problems)
    assert not broken, "requests that failed:\n" + "\n".join(sorted(set(broken)))
    # The generated list really is the site: every page a counselor, admin and partner use is in it.
    for name in (
        "assessments:caseload",
        "assessments:couple",
        "assessments:comparison",
        "assessments:section",
        "assessments:results",
        "assessments:support",
        "assessments:statistics",
        "login",
        "not found",
    ):
        assert name in opened, f"{name} was not opened: {opened}"
    assert set(skipped) >= set(NOT_PAGES)
