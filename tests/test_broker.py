"""The embedded broker (the file-system transport) while other processes write into it."""

import multiprocessing
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction
from kombu import Exchange, Queue

from assessments.models import Reminder
from connection_practice.celery import app as celery_app
from tests.conftest import QUEUE, make_assignment, wait_for

pytestmark = pytest.mark.skipif(
    bool(settings.REDIS_URL), reason="only the embedded default uses the file-system broker"
)


@pytest.mark.smoke
@pytest.mark.worker
def test_a_message_another_process_is_still_writing_does_not_stop_the_worker(world, celery_worker_process):
    worker = celery_worker_process
    world.practice.quiet_hours_start = world.practice.quiet_hours_end
    world.practice.save()
    # What a publisher using kombu's own writer leaves between creating a message file and writing
    # into it: the final name, empty. The name sorts first, so the worker looks at it first.
    options = celery_app.conf.broker_transport_options
    being_written = Path(options["data_folder_in"]) / f"0_being-written.{QUEUE}.msg"
    being_written.write_bytes(b"")

    with transaction.atomic():
        assignment, _ = make_assignment(world.couple)
    invitations = Reminder.objects.filter(response__assignment=assignment, kind=Reminder.Kind.INVITATION)
    sent = wait_for(lambda: invitations.filter(status=Reminder.Status.SENT).count() == 2, timeout=60)

    assert sent, worker.output()[-3000:]
    assert worker.proc.poll() is None, worker.output()[-3000:]
    # Not deleted unread: still waiting for its writer, or (after the grace period) set aside.
    set_aside = Path(options["processed_folder"]) / f"{being_written.name}.undecodable"
    assert being_written.exists() or set_aside.exists()


@pytest.mark.smoke
def test_a_broadcast_reaches_a_queue_bound_to_an_exchange_table_another_process_has_only_just_created(tmp_path):
    # What kombu's own open("wb") leaves between creating an exchange table and writing it: an empty file.
    (tmp_path / "celery.pidbox.exchange").write_bytes(b"")
    options = {**celery_app.conf.broker_transport_options, "control_folder": str(tmp_path)}
    exchange = Exchange("celery.pidbox", "fanout")
    queue = Queue(f"{QUEUE}.pidbox", exchange)
    with celery_app.connection_for_write(transport_options=options) as conn:
        inbox = conn.SimpleQueue(queue)
        conn.Producer().publish({"method": "ping"}, exchange=exchange, declare=[queue])
        assert inbox.get(timeout=5).payload == {"method": "ping"}


def _bind(options, barrier, index):
    channel = celery_app.connection_for_write(transport_options=options).default_channel
    barrier.wait()
    channel._queue_bind("celery.pidbox", "", "", f"worker{index}.celery.pidbox")


@pytest.mark.smoke
def test_processes_that_bind_to_a_new_exchange_at_once_leave_a_table_with_every_binding(tmp_path):
    # A race: kombu's own transport loses a binding or corrupts the table in about one round in
    # twenty, so fifty rounds catch it almost always; the fixed transport never does.
    context = multiprocessing.get_context("fork")
    for round_ in range(50):
        folder = tmp_path / str(round_)
        options = {**celery_app.conf.broker_transport_options, "control_folder": str(folder)}
        barrier = context.Barrier(4)
        binders = [context.Process(target=_bind, args=(options, barrier, i)) for i in range(4)]
        for p in binders:
            p.start()
        for p in binders:
            p.join()
        with celery_app.connection_for_write(transport_options=options) as conn:
            table = conn.default_channel.get_table("celery.pidbox")
        assert sorted(q.queue for q in table) == [f"worker{i}.celery.pidbox" for i in range(4)]
