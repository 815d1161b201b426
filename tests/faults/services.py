"""Private services for the fault tests: each test starts its own Redis, PostgreSQL or mail server on a
free loopback port, breaks it as the fault asks, and never touches the machine's own services."""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
from glob import glob
from pathlib import Path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


# --- Redis -------------------------------------------------------------------------------------


class RedisServer:
    """A redis-server of the test's own, without persistence: a restart comes back empty."""

    def __init__(self):
        self.port = free_port()
        self.proc = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused server cannot stop
            self.proc.kill()
            self.proc.wait()

    def pause(self):
        """Hung: the server keeps its connections and accepts new ones, and answers nothing."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)


class SilentServer:
    """A TCP server that accepts every connection and never says a word (a hung service)."""

    def __init__(self):
        self.port = free_port()
        self.sock = socket.create_server(("127.0.0.1", self.port))
        self.held = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self.stopped.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                conn, _ = self.sock.accept()
                self.held.append(conn)

    def stop(self):
        self.stopped.set()
        self.thread.join()
        for conn in self.held:
            conn.close()
        self.sock.close()


# --- A mail server -----------------------------------------------------------------------------


class _SmtpHandler(socketserver.StreamRequestHandler):
    timeout = 30

    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        server = self.server
        self.reply("220 test-mail ESMTP")
        sender, recipients = None, []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            command = raw.decode(errors="replace").strip()
            verb = command[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250-test-mail\r\n250 8BITMIME" if verb == "EHLO" else "250 test-mail")
            elif verb == "MAIL":
                if server.mode == "451":
                    server.refusals += 1
                    self.reply("451 4.3.2 System not accepting network messages, try again later")
                else:
                    sender, recipients = command[10:], []
                    self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                recipients.append(command[8:].strip("<> "))
                self.reply("250 2.1.5 Ok")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while True:
                    line = self.rfile.readline()
                    if not line or line in (b".\r\n", b".\n"):
                        break
                    lines.append(line.decode(errors="replace"))
                with server.lock:
                    server.received.append({"from": sender, "to": recipients, "data": "".join(lines)})
                self.reply("250 2.0.0 Ok: queued")
            elif verb == "RSET":
                sender, recipients = None, []
                self.reply("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 Error: command not recognized")


class _SmtpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class MailServer:
    """A small real SMTP server: accepts messages, answers 451 to every sender (``refuse_451``), or is
    not there at all (``stop``: connections are refused) until ``accept``/``start`` again."""

    def __init__(self):
        self.port = free_port()
        self.received = []
        self.lock = threading.Lock()
        self.mode = "accept"
        self.refusals = 0
        self.server = None

    def start(self):
        self.server = _SmtpServer(("127.0.0.1", self.port), _SmtpHandler)
        self.server.mode, self.server.received, self.server.lock = self.mode, self.received, self.lock
        self.server.refusals = 0
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def set_mode(self, mode):
        self.mode = mode
        if self.server is not None:
            self.server.mode = mode

    @property
    def refused(self):
        return self.refusals + (self.server.refusals if self.server else 0)

    def stop(self):
        if self.server is not None:
            self.refusals += self.server.refusals
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def message_ids(self):
        ids = []
        with self.lock:
            for message in self.received:
                for line in message["data"].splitlines():
                    if line.lower().startswith("message-id:"):
                        ids.append(line.split(":", 1)[1].strip())
        return ids


# --- PostgreSQL --------------------------------------------------------------------------------


def postgres_bin():
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PostgresCluster:
    """A PostgreSQL cluster of the test's own (initdb, pg_ctl) on a free port, trusting loopback.

    PostgreSQL refuses to run as root; as root the cluster belongs to ``nobody``.
    """

    def __init__(self):
        self.bin = postgres_bin()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="fault-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.user = None
        if os.geteuid() == 0:
            self.user = pwd.getpwnam("nobody")
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)

    @property
    def url(self):
        return f"postgres://postgres@127.0.0.1:{self.port}/connection"

    def _run(self, *args, check=True):
        command = [str(self.bin / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user.pw_name, "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, cwd=self.dir, timeout=60)

    def init(self):
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "connection")
        return self

    def start(self):
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        return self

    def stop(self):
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def destroy(self):
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
