"""Start the web server, a Celery worker and Celery beat together; stop all three on Ctrl-C.

This is what `make run` runs after migrating and seeding: one terminal, one Ctrl-C.
"""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from connection_practice.celery import command as celery_command


def processes(port):
    """The three processes; the web server on ``port`` (settings.PORT, from PORT, by default)."""
    return {
        "web": [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        **WORKERS,
    }


WORKERS = {
    "worker": celery_command("worker", "--loglevel", "WARNING", "--concurrency", "2"),
    "beat": celery_command("beat", "--loglevel", "WARNING"),
}


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run the web server, a Celery worker and Celery beat until Ctrl-C, then stop them all."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=None, help="web server port (default: PORT, else 8000)")

    def handle(self, *args, port=None, **options):
        port = port or settings.PORT
        # The worker and beat read the same port, so the links they e-mail point at this server.
        env = {**os.environ, "PORT": str(port)}
        signal.signal(signal.SIGTERM, _interrupt)
        children = {name: subprocess.Popen(argv, env=env) for name, argv in processes(port).items()}  # noqa: S603
        self.stdout.write(f"Web on http://127.0.0.1:{port} with a worker and beat. Ctrl-C stops all three.")
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
