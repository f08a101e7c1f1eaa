from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from daemon.db.models import OutboxRow
from daemon.outbox import add_event, add_task
from daemon.workers.tasks import PURGE_OUTBOX
from tests.events.test_schemas import SAMPLES, validate


def rows(engine: Engine) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.select(OutboxRow).order_by(OutboxRow.id)).all()


def test_event_is_written_once_per_idempotency_key(engine: Engine) -> None:
    data = SAMPLES["be.eboxd.message.received"]
    with engine.begin() as tx:
        assert add_event(tx, "be.eboxd.message.received", subject="0403170701", data=data, idempotency_key="m:1")
        assert not add_event(tx, "be.eboxd.message.received", subject="0403170701", data=data,
                             idempotency_key="m:1")
    with engine.begin() as tx:  # a later re-poll of the same message
        assert not add_event(tx, "be.eboxd.message.received", subject="0403170701", data=data,
                             idempotency_key="m:1")
    [row] = rows(engine)
    assert row.kind == "event"
    assert row.sent_at is None
    validate(row.payload)
    assert row.payload["id"] == row.event_id


def test_event_rolls_back_with_the_state_change(engine: Engine) -> None:
    def poll_that_fails_after_writing() -> None:
        with engine.begin() as tx:
            add_event(tx, "be.eboxd.message.received", subject="0403170701",
                      data=SAMPLES["be.eboxd.message.received"], idempotency_key="m:2")
            raise RuntimeError("the poll failed after writing")

    with pytest.raises(RuntimeError):
        poll_that_fails_after_writing()
    assert rows(engine) == []


def test_task_keeps_actor_queue_and_arguments(engine: Engine) -> None:
    with engine.begin() as tx:
        assert add_task(tx, PURGE_OUTBOX, {"retention_days": 3}, idempotency_key="purge:1")
    [row] = rows(engine)
    assert (row.kind, row.topic, row.queue_name, row.payload) == ("task", "purge_outbox", "maintenance",
                                                                 {"retention_days": 3})
