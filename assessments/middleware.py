from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's session middleware, except that a view may mark a request `skip_session_save`.

    SESSION_SAVE_EVERY_REQUEST keeps staff sessions sliding (the idle timeout), at the cost of one
    UPDATE per request. The partner's autosave endpoint changes nothing in the session, so it
    skips that write, and refreshes the session only every few minutes instead.
    """

    def process_response(self, request, response):
        if getattr(request, "skip_session_save", False) and not request.session.modified:
            return response
        return super().process_response(request, response)
