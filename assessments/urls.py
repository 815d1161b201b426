from django.urls import path

from .views import counselor, inbox, office, partner, plans, reports, talk

app_name = "assessments"
urlpatterns = [
    # The partner's side: a personal link, then pages scoped to that partner's session.
    path("a/<str:token>/", partner.open_link, name="open_link"),
    path("respond/<int:response_id>/", partner.welcome, name="welcome"),
    path("respond/<int:response_id>/consent/", partner.consent, name="consent"),
    path("respond/<int:response_id>/section/<int:index>/", partner.section, name="section"),
    path("respond/<int:response_id>/save/", partner.save_answer, name="save_answer"),
    path("respond/<int:response_id>/talk/", talk.save_talk, name="save_talk"),
    path("respond/<int:response_id>/review/", partner.review, name="review"),
    path("respond/<int:response_id>/submit/", partner.submit, name="submit"),
    path("respond/<int:response_id>/results/", partner.results, name="results"),
    path("respond/<int:response_id>/support/", partner.support, name="support"),
    path("respond/<int:response_id>/language/", partner.switch_language, name="partner_language"),
    path("couples/summary/<int:response_id>/", partner.shared_summary, name="shared_summary"),
    path("stop-reminders/<str:token>/", partner.unsubscribe, name="unsubscribe"),
    path("leave/", partner.leave, name="exit"),
    path("finished/", partner.finished, name="finished"),
    # In-office answering: the neutral page of the practice's device, and its end.
    path("here/", office.here, name="here"),
    path("here/end/", office.here_end, name="here_end"),
    path("here/device/", office.device, name="device"),
    # The counselor's caseload, couple page and comparison.
    path("couples/", counselor.caseload, name="caseload"),
    path("couples/<int:pk>/", counselor.couple, name="couple"),
    path("couples/<int:pk>/assessments/<int:assignment_pk>/", counselor.comparison_view, name="comparison"),
    path(
        "couples/<int:pk>/assessments/<int:assignment_pk>/report.pdf", counselor.comparison_pdf, name="comparison_pdf"
    ),
    path("couples/<int:pk>/assessments/<int:assignment_pk>/release/", counselor.release, name="release"),
    path("couples/<int:pk>/assessments/<int:assignment_pk>/withdraw/", counselor.withdraw, name="withdraw"),
    path(
        "couples/<int:pk>/assessments/<int:assignment_pk>/share-results/",
        counselor.share_results,
        name="share_results",
    ),
    path("alerts/<int:alert_pk>/acknowledge/", counselor.acknowledge_alert, name="acknowledge_alert"),
    # The counselor's inbox.
    path("inbox/", inbox.inbox_page, name="inbox"),
    path("inbox/<int:assignment_pk>/<str:kind>/", inbox.inbox_mark, name="inbox_mark"),
    # The counselor's actions on an administration.
    path("couples/<int:couple_pk>/assign/", counselor.assign, name="assign"),
    path("couples/<int:couple_pk>/plan/", plans.plan, name="plan"),
    path("couples/<int:couple_pk>/plan/action/", plans.plan_action, name="plan_action"),
    path("assignments/<int:assignment_pk>/cancel/", counselor.cancel, name="cancel"),
    path("responses/<int:response_pk>/resend/", counselor.resend, name="resend"),
    path("responses/<int:response_pk>/reissue/", counselor.reissue, name="reissue"),
    path("responses/<int:response_pk>/end-access/", counselor.end_access, name="end_access"),
    path("responses/<int:response_pk>/answer-here/", office.answer_here, name="answer_here"),
    path("responses/<int:response_pk>/this-device/", office.this_device, name="this_device"),
    path("reminders/responses/<int:response_pk>/remind-now/", counselor.remind_now, name="remind_now"),
    path("reminders/couples/<int:couple_pk>/pause/", counselor.pause_reminders, name="pause_reminders"),
    path("messages/<int:job_pk>/retry/", counselor.retry_message, name="retry_message"),
    # The practice admin's reports.
    path("practice/statistics/", reports.statistics, name="statistics"),
    path("practice/exports/", reports.export_page, name="exports"),
    path("practice/exports/<int:pk>/", reports.export_job, name="export_job"),
    path("practice/exports/<int:pk>/file/", reports.export_file, name="export_file"),
    path("practice/codebook/", reports.codebook_download, name="codebook"),
    path("practice/couples/<int:pk>/record/", reports.couple_record, name="couple_record"),
]
