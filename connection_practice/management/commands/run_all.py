"""Start the web server, a Celery worker and Celery beat together; stop all three on Ctrl-C.

This is what `make run` runs after migrating and seeding: one terminal, one Ctrl-C.
"""

import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

from connection_practice.celery import command as celery_command

PROCESSES = {
    "web": [sys.executable, "manage.py", "runserver", "127.0.0.1:8000", "--noreload"],
    "worker": celery_command("worker", "--loglevel", "WARNING", "--concurrency", "2"),
    "beat": celery_command("beat", "--loglevel", "WARNING"),
}


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run the web server, a Celery worker and Celery beat until Ctrl-C, then stop them all."

    def handle(self, *args, **options):
        signal.signal(signal.SIGTERM, _interrupt)
        children = {name: subprocess.Popen(argv) for name, argv in PROCESSES.items()}  # noqa: S603
        self.stdout.write("Web on http://127.0.0.1:8000 with a worker and beat. Ctrl-C stops all three.")
        try:
            while True:
                for name, child in children.items():
                    if child.poll() is not None:
                        self.stderr.write(f"{name} stopped (exit {child.returncode}); stopping the others.")
                        raise KeyboardInterrupt
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop(children)

    def stop(self, children):
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 15
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.stdout.write("Stopped web, worker and beat.")
