"""E-mail backends that the reminder tests select in a worker through the EMAIL_BACKEND variable."""

import os
import time
from pathlib import Path

from django.core.mail.backends.filebased import EmailBackend as FileBackend


class SlowOnceBackend(FileBackend):
    """Writes messages to files like the file backend; the first send after a flag file appears
    stalls (as a hung mail server would) after announcing its process id, so a test can SIGKILL it
    in the middle of a send. The flag is consumed, so whoever takes over sends at once.
    MAIL_DELAY_SECONDS adds latency to every send."""

    def send_messages(self, email_messages):
        flag = os.environ.get("SLOW_MAIL_FLAG")
        if flag and Path(flag).exists():
            started = Path(flag + ".started")
            try:
                os.replace(flag, started)
            except FileNotFoundError:
                pass
            else:
                started.write_text(str(os.getpid()))
                time.sleep(float(os.environ.get("SLOW_MAIL_SECONDS", "30")))
        # A little latency on every send lets racing duplicates overlap, as with a real server.
        time.sleep(float(os.environ.get("MAIL_DELAY_SECONDS", "0")))
        return super().send_messages(email_messages)
