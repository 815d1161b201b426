"""gunicorn's settings for the web process (the Procfile passes ``-c python:connection_practice.gunicorn_conf``).

The access log keeps every request line, with the secret of a personal link, an invitation, a
stop-reminders link or a password-reset link replaced by ``[redacted]``: the same ``redact()``
as Django's own log lines (practice/log_filters.py). gunicorn's error log goes through it too
("Error handling request /a/<token>/").
"""

from gunicorn.glogging import Logger

from practice.log_filters import RedactSecrets

accesslog = "-"
logger_class = "connection_practice.gunicorn_conf.RedactingLogger"


class RedactingLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.access_log, self.error_log):
            if not any(isinstance(f, RedactSecrets) for f in log.filters):
                log.addFilter(RedactSecrets())
