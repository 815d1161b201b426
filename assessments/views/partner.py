"""The partner's pages: reached through a personal link, never a password, and scoped to one response."""

import contextlib
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from practice import security
from practice.models import audit
from practice.tokens import hash_token

from .. import answering, caseload, charts, comparison, office, reminders, scoring, talk, workflows
from ..forms import ConfirmForm, ConsentForm, SaveAnswerForm, SectionForm
from ..models import Response, ResponseLink

SESSION_KEY = "partner_response_id"
LINK_KEY = "partner_link_id"
SAFETY_SECTION = "safety"

# What a band means, said to the person who answered (the counselor's pages use their own wording).
PLAIN_WORDS = {
    "strong": gettext_lazy("A strength for you right now."),
    "mixed": gettext_lazy("Partly good, partly worth working on."),
    "needs_attention": gettext_lazy("Feels hard for you right now, and worth talking about with your counselor."),
    None: gettext_lazy("Not enough answers to give a score."),
}


def _new_link_hint(assignment):
    counselor = assignment.couple.counselor.get_full_name()
    return _("Please ask %(counselor)s to send you a new link. Every answer you already gave is kept.") % {
        "counselor": counselor
    }


# --- Partner pages ---------------------------------------------------------------------------


def partner_response(request, response_id):
    """The response this browser's partner session is scoped to, or None.

    The session holds the response and the link it was opened with; a link revoked since then
    (the counselor sent a new one) ends the session too. One query.
    """
    if request.session.get(SESSION_KEY) != response_id or LINK_KEY not in request.session:
        return None
    if office.idled_out(request.session):
        _end_office_session(request, "idle")
        return None
    found = (
        Response.objects.select_related("partner", "assignment__couple__practice", "assignment__couple__counselor")
        .filter(pk=response_id, links__pk=request.session[LINK_KEY], links__revoked_at__isnull=True)
        .first()
    )
    if found is not None:
        office.touch(request.session)
    return found


def _end_office_session(request, why, response=None):
    """End the device's in-office session (assessments/office.py) after ``why``: audited, nothing kept."""
    response_id = request.session.get(SESSION_KEY)
    if response is None and isinstance(response_id, int):
        response = Response.objects.select_related("assignment__couple__practice", "partner").filter(pk=response_id)
        response = response.first()
    if response is not None:
        _partner_audit(request, "response.office_session_ended", response, why=why)
    request.session.flush()


def _link_problem(request, title, message, status):
    # No response in the context, on purpose and explicitly (a missing name would log a lookup error).
    context = {"title": title, "message": message, "response": None}
    return render(request, "assessments/link_problem.html", context, status=status)


def _not_your_link(request):
    return _link_problem(
        request,
        _("Please open your personal link"),
        _(
            "For your privacy this page opens only from the link in your e-mail. "
            "If you already opened it, your visit may have timed out: open the link again, every answer is kept."
        ),
        403,
    )


# What a partner reads when their link no longer opens anything, by Response.link_problem().
LINK_PROBLEMS = {
    "cancelled": (
        gettext_lazy("This link no longer opens"),
        gettext_lazy("Your counselor closed it. Every answer you gave is kept."),
    ),
    "expired": (gettext_lazy("This link has expired"), None),
    "revoked": (gettext_lazy("This link no longer opens"), None),
}


def _link_closed(request, reason, assignment):
    title, message = LINK_PROBLEMS[reason]
    return _link_problem(request, title, message or _new_link_hint(assignment), 410)


def _closed(request, response):
    """A problem page when no answer of the response may change now, else None."""
    reason = response.answering_closed()
    if reason == "submitted":
        return _link_problem(
            request, _("You have already submitted"), _("Your answers are saved and can no longer be changed."), 409
        )
    return _link_closed(request, reason, response.assignment) if reason else None


def partner_view(view):
    """A partner page: no sign-in, scoped to the session's response, never cached by the browser.

    A link that has expired or was closed since the session began ends the session too: nothing
    of the response opens after the counselor's (or the calendar's) "no more".
    """

    @login_not_required
    @never_cache
    @wraps(view)
    def wrapper(request, response_id, *args, **kwargs):
        if office.idled_out(request.session):
            # Five idle minutes on the office device: the neutral page, ready for the next person.
            _end_office_session(request, "idle")
            return redirect("assessments:here")
        response = partner_response(request, response_id)
        if response is None:
            return _not_your_link(request)
        if problem := response.link_problem():
            request.session.flush()
            return _link_closed(request, problem, response.assignment)
        timezone.activate(response.assignment.couple.practice.tz)  # PracticeMiddleware deactivates it
        # The partner's own language, from their record, never from a cookie or the browser: the
        # device may be shared, and the other partner's choice must not follow anyone.
        with translation.override(answering.language_of(response)):
            return view(request, response, *args, **kwargs)

    return wrapper


def _ready(response):
    """Where a partner must go first (identity, then consent), or None when they may answer."""
    if response.identity_confirmed_at is None:
        return redirect("assessments:welcome", response_id=response.pk)
    if response.consented_at is None:
        return redirect("assessments:consent", response_id=response.pk)
    return None


def _partner_audit(request, action, response, obj=None, **detail):
    audit(
        request,
        action,
        obj or response,
        practice=response.assignment.couple.practice,
        actor_label=f"partner {response.partner.position}",
        **detail,
    )


def _resume_url(response, all_pages=None):
    if response.submitted_at is not None:
        return reverse("assessments:results", args=[response.pk])
    page = answering.first_unanswered(all_pages if all_pages is not None else answering.pages(response))
    if page is None:
        return reverse("assessments:review", args=[response.pk])
    return reverse("assessments:section", args=[response.pk, page.index])


@login_not_required
@never_cache
def open_link(request, token):
    """Exchange a personal link's token for a partner session, then continue on a URL without it."""
    paused = security.token_lookups_paused(request)
    if paused is not None:
        return paused
    link = (
        ResponseLink.objects.select_related(
            "response__assignment__couple__practice", "response__assignment__couple__counselor", "response__partner"
        )
        .filter(token_hash=hash_token(token))
        .first()
    )
    if link is None:
        security.count_unknown_token(request)
        return _link_problem(
            request,
            _("We don't recognise this link"),
            _("Please check that you opened the whole link from your e-mail, or ask your counselor for a new one."),
            404,
        )
    assignment = link.response.assignment
    problem = "revoked" if link.revoked_at is not None else link.response.link_problem()
    if problem:
        with translation.override(answering.language_of(link.response)):
            return _link_closed(request, problem, assignment)
    request.session.cycle_key()
    request.session[SESSION_KEY] = link.response.pk
    request.session[LINK_KEY] = link.pk
    _partner_audit(request, "response.link_open", link.response)
    return redirect("assessments:welcome", response_id=link.response.pk)


@partner_view
def welcome(request, response):
    """ "You are answering as <first name>": the first page after every opening of the link."""
    if request.method == "POST":
        if response.identity_confirmed_at is None:
            response.identity_confirmed_at = timezone.now()
            response.save(update_fields=["identity_confirmed_at"])
        return _ready(response) or redirect(_resume_url(response))
    return render(request, "assessments/welcome.html", {"response": response})


@partner_view
def consent(request, response):
    if response.identity_confirmed_at is None:
        return redirect("assessments:welcome", response_id=response.pk)
    initial = {}
    if response.share_consent is not None:
        initial = {"understood": True, "share_summary": "yes" if response.share_consent else "no"}
    form = ConsentForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        now = timezone.now()
        choice = form.cleaned_data["share_summary"]
        changed = response.share_consent is not None and response.share_consent != choice
        response.share_consent = choice
        response.consented_at = response.consented_at or now
        response.started_at = response.started_at or now
        # A change of mind is the counselor's to see (before releasing, and after: a withdrawn
        # agreement hides a released summary again).
        response.sharing_changed_at = now if changed else response.sharing_changed_at
        response.save(update_fields=["share_consent", "consented_at", "started_at", "sharing_changed_at"])
        _partner_audit(
            request, "response.sharing_changed" if changed else "response.consent", response, share_summary=choice
        )
        return redirect(_resume_url(response))
    status = 400 if form.errors else 200
    return render(request, "assessments/consent.html", {"response": response, "form": form}, status=status)


def _page_context(response, all_pages, page, form=None):
    return {
        "response": response,
        "pages": all_pages,
        "page": page,
        "form": form,
        "progress": answering.progress(all_pages),
        "previous": all_pages[page.index - 2] if page.index > 1 else None,
        "next": all_pages[page.index] if page.index < len(all_pages) else None,
        "read_only": response.submitted_at is not None,
        "expires_at": response.link_expires_at,
        "note_max": talk.NOTE_MAX,
    }


@partner_view
def section(request, response, index):
    """One section per page. Radios autosave with JavaScript; "Save and continue" posts the page."""
    if not_ready := _ready(response):
        return not_ready
    if response.submitted_at is not None:
        # Once submitted, the partner's pages are their results and support only: no page shows
        # their item answers again (least of all the safety section) to whoever holds the phone.
        return redirect("assessments:results", response_id=response.pk)
    all_pages = answering.pages(response)
    talk.attach(all_pages, talk.stored_flags(response))
    if not 1 <= index <= len(all_pages):
        raise Http404("There is no such page in this assessment.")
    page = all_pages[index - 1]
    if request.method != "POST":
        if problem := _closed(request, response):
            return problem
        return render(request, "assessments/section.html", _page_context(response, all_pages, page))
    if problem := _closed(request, response):
        return problem
    form = SectionForm(request.POST, page=page)
    if not form.is_valid():
        # Keep what was chosen on the page, show why it was not saved.
        for q in page.questions:
            raw = request.POST.get(f"item-{q.code}")
            if raw in {value for value, _label in q.choices}:
                q.value = raw
            if f"item-{q.code}" in form.errors:
                q.error = _("Please choose one of the answers shown.")
            q.talk = f"talk-{q.code}" in request.POST
            q.note = request.POST.get(f"note-{q.code}", q.note)
            if f"note-{q.code}" in form.errors:
                q.note_error = _("Please keep the note to %(count)s characters.") % {"count": talk.NOTE_MAX}
        context = _page_context(response, all_pages, page, form)
        return render(request, "assessments/section.html", context, status=400)
    rules = answering.item_rules(response.assignment.instrument_id)
    now = timezone.now()
    with transaction.atomic():
        for code, value, seq in form.answers():
            answering.save_answer(response_id=response.pk, item_id=rules[code].id, value=value, seq=seq, now=now)
        for code, wanted, note, seq in form.talk_changes():
            talk.save_flag(response_id=response.pk, item_id=rules[code].id, wanted=wanted, note=note, seq=seq, now=now)
        Response.objects.filter(pk=response.pk).update(last_saved_at=now)
        if page.has_safety:
            workflows.record_safety(response, now=now)
        caseload.refresh(response.assignment.couple_id)  # its last activity
    if page.has_safety and answering.needs_support(response):
        return redirect("assessments:support", response_id=response.pk)
    if "back" in request.POST and index > 1:
        return redirect("assessments:section", response_id=response.pk, index=index - 1)
    if index < len(all_pages):
        return redirect("assessments:section", response_id=response.pk, index=index + 1)
    return redirect("assessments:review", response_id=response.pk)


def save_refused(message, status):
    """A refused autosave: short plain text the page's script shows as it is."""
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def saving_refusal(request, response_id):
    """(response, None) when this session may save to the response now, else (None, the refusal).

    The rules every autosave shares (an answer's, a "talk about this" flag's).
    """
    response = partner_response(request, response_id)
    if response is None:
        reopen = _("Not saved: please open your personal link again. Your earlier answers are kept.")
        return None, save_refused(reopen, 403)
    with translation.override(answering.language_of(response)):
        if response.identity_confirmed_at is None or response.consented_at is None:
            return None, save_refused(_("Not saved: please start from your personal link."), 409)
        closed = response.answering_closed()
        if closed == "submitted":
            message = _("Not saved: you have already submitted, so answers can no longer change.")
            return None, save_refused(message, 409)
        if closed == "expired":
            hint = _new_link_hint(response.assignment)
            return None, save_refused(_("Not saved: this link has expired. %(hint)s") % {"hint": hint}, 410)
        if closed:
            message = _("Not saved: this link no longer opens. Every answer you gave is kept.")
            return None, save_refused(message, 410)
    return response, None


@login_not_required
@never_cache
@require_POST
def save_answer(request, response_id):
    """Autosave one answer: 204 when stored, a short 4xx message otherwise.

    Three queries: the session, the response (partner_response), the upsert (save_answer); a
    safety item adds the response row's lock and the safety level's two, and answers with the support resources when the
    level calls for them. The session is written back at most once a minute (practice.middleware.touch).
    """
    response, refused = saving_refusal(request, response_id)
    if refused:
        return refused
    with translation.override(answering.language_of(response)):
        form = SaveAnswerForm(request.POST, rules=answering.item_rules(response.assignment.instrument_id))
        if not form.is_valid():
            errors = form.non_field_errors() or [_("Please choose one of the answers shown.")]
            return save_refused(_("Not saved: %(reason)s") % {"reason": errors[0]}, 400)
        rule = form.cleaned_data["rule"]
        # A safety answer and the alert it may raise are stored together, or not at all.
        with transaction.atomic(savepoint=False) if rule.section == SAFETY_SECTION else contextlib.nullcontext():
            if rule.section == SAFETY_SECTION:
                # The response row first, for update: record_safety may write it, and two safety saves
                # that both held the upsert's share lock and then both asked to write would deadlock.
                answering.lock_for_safety(response.pk)
            stored = answering.save_answer(
                response_id=response.pk,
                item_id=rule.id,
                value=form.cleaned_data["answer"],
                seq=form.cleaned_data["seq"],
            )
            if stored and rule.section == SAFETY_SECTION:
                # More queries, for safety items only: read the safety answers, store a changed level (and alert).
                workflows.record_safety(response)
        if not stored:
            return save_refused(_("Not saved: a newer answer to this question was already saved."), 409)
        if rule.section == SAFETY_SECTION and answering.needs_support(response):
            # The tiny partial the page shows at once: support resources, for this respondent only.
            return render(request, "assessments/_support_resources.html", {"response": response})
        return HttpResponse(status=204)


@partner_view
def review(request, response):
    """Everything at a glance before submitting: unanswered questions and what is still needed."""
    if elsewhere := _before_review(request, response):
        return elsewhere
    all_pages = answering.pages(response)
    return render(request, "assessments/review.html", _review_context(response, all_pages))


def _before_review(request, response):
    """Where a partner goes instead of reviewing or submitting: identity or consent first, results
    once submitted, the closed-link page when the assignment no longer takes answers."""
    if not_ready := _ready(response):
        return not_ready
    if response.submitted_at is not None:
        return redirect("assessments:results", response_id=response.pk)
    return _closed(request, response)


def _review_context(response, all_pages):
    return {
        "response": response,
        "pages": all_pages,
        "progress": answering.progress(all_pages),
        "unanswered": [(p, [q for q in p.questions if not q.answered]) for p in all_pages if not p.complete],
        "shortfalls": answering.shortfalls(response, all_pages),
        "needs_support": answering.needs_support(response),
    }


@partner_view
@require_POST
def submit(request, response):
    """Submit once: a double click or a second tab lands on the same results."""
    if elsewhere := _before_review(request, response):
        return elsewhere
    all_pages = answering.pages(response)
    if answering.shortfalls(response, all_pages):
        context = {**_review_context(response, all_pages), "submit_error": True}
        return render(request, "assessments/review.html", context, status=400)
    with transaction.atomic():  # the submission and its audit row commit together, or neither
        if not response.language:  # the language it was answered in, kept with the answers
            response.language = answering.language_of(response)
            response.save(update_fields=["language"])
        if workflows.submit(response):
            _partner_audit(request, "response.submit", response)
    if office.is_office_session(request.session):
        # On the practice's device the visit ends with the submit: nothing of it stays on screen.
        _end_office_session(request, "submitted", response)
        request.session[office.THANKS_KEY] = True  # the new, empty session: "thank you" and nothing else
        return redirect("assessments:here")
    return redirect("assessments:results", response_id=response.pk)


@partner_view
def results(request, response):
    """The partner's own scores, in plain words. Never the other partner's."""
    if response.submitted_at is None:
        return _ready(response) or redirect(_resume_url(response))
    if not response.may_see_results():
        # The practice shows results at the feedback session: nothing of them before then.
        _partner_audit(request, "response.results_view", response, released=False)
        return render(request, "assessments/results_waiting.html", {"response": response})
    score = getattr(response, "score", None)
    spec = answering.definition(response.assignment.instrument_id, answering.language_of(response))
    # Each part is named as on the page the partner answered it, not by its scoring name.
    section_titles = {section["key"]: section["title"] for section in spec.get("sections", [])}
    rows = []
    if score is not None:
        for domain in spec["domains"]:
            value = score.domains.get(domain["key"])
            band = scoring.band(value)
            rows.append(
                {
                    "title": section_titles.get(domain["key"], domain["title"]),
                    "score": None if value is None else scoring.whole(value),
                    "band": band,
                    "band_label": _(scoring.BAND_LABELS.get(band, gettext_noop("Not scored"))),
                    "words": PLAIN_WORDS[band],
                    "private": domain["key"] in scoring.PRIVATE_DOMAINS,
                }
            )
    index = score.connection_index if score is not None else None
    _partner_audit(request, "response.results_view", response)
    context = {
        "response": response,
        "rows": rows,
        "index": None if index is None else scoring.whole(index),
        "index_band": scoring.band(index),
        "index_band_label": _(scoring.BAND_LABELS[scoring.band(index)]) if scoring.band(index) else "",
        "band_note": _(scoring.BAND_NOTE),
        # What each band means, said once for the bands that occur (not once per row).
        "band_words": [
            (_(scoring.BAND_LABELS.get(band, gettext_noop("Not scored"))), PLAIN_WORDS[band])
            for band in ("strong", "mixed", "needs_attention", None)
            if any(row["band"] == band for row in rows)
        ],
        "needs_support": answering.needs_support(response),
        "summary_shared": response.assignment.summary_is_shared(comparison.responses_by_position(response.assignment)),
    }
    return render(request, "assessments/results.html", context)


@partner_view
@require_POST
def switch_language(request, response):
    """The partner's own choice of language, kept on their record and on this response.

    Every answer is already saved on its own (autosave, or the page's Continue), and answers are
    kept by item id, so nothing given in one language is lost in the other.
    """
    language = request.POST.get("language", "")
    if language in dict(settings.LANGUAGES):  # anything else changes nothing: the page comes back as it was
        partner = response.partner
        if partner.language != language:
            partner.language = language
            partner.save(update_fields=["language"])
        if response.submitted_at is None and response.language != language:
            response.language = language
            response.save(update_fields=["language"])
        _partner_audit(request, "response.language_switch", response, language=language)
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = reverse("assessments:welcome", args=[response.pk])
    return HttpResponseRedirect(next_url)


@partner_view
def support(request, response):
    """Support resources and a quick exit, for a respondent whose safety answers call for them."""
    if not answering.needs_support(response):
        return redirect(_resume_url(response))
    next_url = _resume_url(response)
    return render(request, "assessments/support.html", {"response": response, "next_url": next_url})


# --- The summary a counselor released ---------------------------------------------------------------


@partner_view
def shared_summary(request, response):
    """The released summary, seen by one partner through their own link: domain level only."""
    assignment = response.assignment
    responses = comparison.responses_by_position(assignment)
    if not assignment.summary_is_shared(responses):
        return _link_problem(
            request,
            "Nothing to show yet",
            "Your counselor can share a summary once you have both finished and both agreed to it.",
            404,
        )
    summary = comparison.shared_summary(assignment, responses)
    _partner_audit(request, "summary.view", response, obj=assignment)
    return render(
        request,
        "clients/shared_summary.html",
        {
            "summary": summary,
            "response": response,
            "bars": charts.shared_bars(summary),
            "explain": comparison.EXPLAIN["shared"],
        },
    )


# --- Leaving -------------------------------------------------------------------------------------


@login_not_required
@csrf_exempt
@require_POST
def leave(request):
    """Quick exit and "Finish for now": end the partner's session on the server, then go.

    It works without a session (there is then nothing to end) and without a CSRF token, because
    ending a visit must never fail; the worst a forged request can do is end someone's visit. A
    quick exit lands on the practice's neutral site; "Finish for now" on a page that shows nothing.
    """
    target = settings.DEFAULT_QUICK_EXIT_URL
    response_id = request.session.get(SESSION_KEY)
    how = "finish" if request.POST.get("how") == "finish" else "quick"
    in_office = office.is_office_session(request.session)
    if isinstance(response_id, int):
        response = Response.objects.select_related("assignment__couple__practice", "partner").filter(pk=response_id)
        if (found := response.first()) is not None:
            target = found.assignment.couple.practice.quick_exit_url
            _partner_audit(request, "response.visit_ended", found, how=how)
    request.session.flush()
    if in_office and how == "finish":
        return redirect("assessments:here")  # the office device, ready for the next person
    if how == "finish":
        return redirect("assessments:finished")
    return HttpResponseRedirect(target)


@login_not_required
@never_cache
def finished(request):
    """Where "Finish for now" lands: nothing of any response, ready to hand the device on."""
    return render(request, "assessments/finished.html")


# --- Stopping reminders (the link in every reminder e-mail) ---------------------------------------


def _unsubscribe_problem(request):
    return render(
        request,
        "assessments/link_problem.html",
        {
            "title": "We don't recognise this link",
            "message": "Please open the whole link from your reminder e-mail, or ask your counselor to stop reminders.",
        },
        status=404,
    )


@login_not_required
def unsubscribe(request, token):
    paused = security.token_lookups_paused(request)
    if paused is not None:
        return paused
    partner = reminders.partner_for_unsubscribe(token)
    if partner is None:
        security.count_unknown_token(request)
        return _unsubscribe_problem(request)
    form = ConfirmForm(request.POST if request.method == "POST" else None)
    done = partner.reminders_unsubscribed_at is not None
    if request.method == "POST" and form.is_valid():
        if reminders.unsubscribe(partner):
            audit(
                None,
                "partner.reminders_unsubscribed",
                partner,
                practice=partner.couple.practice,
                actor_label="partner (unsubscribe link)",
            )
        return redirect("assessments:unsubscribe", token=token)
    return render(
        request,
        "assessments/unsubscribe.html",
        {"partner": partner, "practice": partner.couple.practice, "form": form, "done": done},
    )
