"""Kombu's file-system transport (the embedded default broker), safe with several processes at once.

The web process, beat and the worker all publish into one folder. kombu's own transport creates
each message file under its final name and only then writes the JSON into it, while the worker
takes any file with that name at once: it can read the file empty, deletes it, and the
JSONDecodeError it then raises is not an error Celery recovers from, so the worker stops and the
message is gone. Here a message is written under a name consumers ignore and renamed into place
(atomic within one file system), so a consumer sees all of a message or nothing. A file that still
does not decode is left for a later poll, and moved aside with an error in the log once it is old
enough that no writer can still be writing it, instead of stopping the worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from queue import Empty

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

# A message file that does not decode this long after it was last written is broken, not
# being written: it is moved to the processed folder as NAME.undecodable.
UNDECODABLE_GRACE_SECONDS = 10.0


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        # Consumers take only names whose text after the first dot is "<queue>.msg", so the
        # ".part" file is invisible to them until os.replace gives it its final name. The
        # zero-padded wall-clock prefix keeps the folder's sorted order the publishing order.
        name = f"{time.time_ns():020d}_{uuid.uuid4().hex}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = f"{final}.part"
        try:
            with open(partial, "wb") as f:
                f.write(dumps(payload).encode())
            os.replace(partial, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise ChannelError(f"Cannot add a message to {self.data_folder_out!r}") from exc

    def _get(self, queue):
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:
                continue
            path = os.path.join(self.data_folder_in, name)
            try:
                with open(path, "rb") as f:
                    payload = loads(f.read())
            except OSError:
                continue  # another consumer took it first
            except ValueError:  # JSONDecodeError, UnicodeDecodeError
                self._set_aside_if_stale(path, name)
                continue
            # Removing (or moving) the file is the claim: of several consumers that read it,
            # exactly one succeeds and delivers it.
            try:
                if self.store_processed:
                    os.replace(path, os.path.join(self.processed_folder, name))
                else:
                    os.remove(path)
            except FileNotFoundError:
                continue
            return payload
        raise Empty()

    # The exchange tables in the control folder. kombu creates a new table with open("wb") before
    # it locks it, so processes that bind to a new exchange at the same moment (a worker and beat
    # on a first start) can truncate each other's table mid-write and leave it corrupt for good.
    # Here the table is created without truncation, changed only under the exclusive lock, and an
    # empty table (just created, not written yet) is read as no bindings.
    def _queue_bind(self, exchange, routing_key, pattern, queue):
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(exist_ok=True)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        try:
            with os.fdopen(os.open(file, os.O_RDWR | os.O_CREAT, 0o644), "r+b", buffering=0) as f:
                filesystem.lock(f, filesystem.LOCK_EX)  # held until the file is closed
                table = self._table(f.read())
                if binding not in table:
                    f.seek(0)
                    f.write(dumps([binding, *table]).encode())
                    f.truncate()
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc

    def get_table(self, exchange):
        file = self._exchange_file(exchange)
        try:
            with open(file, "rb") as f:
                filesystem.lock(f, filesystem.LOCK_SH)
                raw = f.read()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc
        return self._table(raw)

    @staticmethod
    def _table(raw):
        return [filesystem.exchange_queue_t(*row) for row in loads(raw)] if raw else []

    def _set_aside_if_stale(self, path, name):
        with contextlib.suppress(OSError):
            if time.time() - os.stat(path).st_mtime >= UNDECODABLE_GRACE_SECONDS:
                os.replace(path, os.path.join(self.processed_folder, f"{name}.undecodable"))
                logger.error("Moved the message file %s aside: it is not valid JSON", name)


class Transport(filesystem.Transport):
    Channel = Channel
