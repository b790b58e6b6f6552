"""EventFeed on real databases: real holes on PostgreSQL, racing writers on both."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from core.db.engine import create_db_engine, session_factory
from core.db.models import Event
from core.event_stream import EventFeed, StreamEvent
from core.events import publish
from tests.conftest import pg_admin_url
from tests.support.localnet import wait_for


@pytest.fixture
def pg_engine(pg_url: str):
    engine = create_db_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def feeds():
    """Builds EventFeeds and closes them (each holds a connection on PostgreSQL)."""
    built: list[EventFeed] = []

    def build(engine: Engine, **kwargs) -> EventFeed:
        built.append(EventFeed(engine, **kwargs))
        return built[-1]

    yield build
    for feed in built:
        feed.close()


def ids(events: list[StreamEvent]) -> list[int]:
    return [event.id for event in events]


def _next_events(feed: EventFeed) -> list[StreamEvent]:
    """The next events the feed releases, within 10 s: well under its 30 s hole wait, so
    a feed that only released them by timing the hole out still fails."""
    return wait_for(feed.poll, timeout=10, what="the event after the hole")


def open_event(sessions: sessionmaker[Session], label: str) -> tuple[Session, int]:
    """A session holding an uncommitted event (its id is drawn); the caller ends it."""
    session = sessions()
    event = publish(session, "mint_requested", {"label": label})
    session.flush()
    return session, event.id


def committed_event(sessions: sessionmaker[Session], label: str) -> int:
    with sessions() as session:
        event = publish(session, "mint_requested", {"label": label})
        session.commit()
        return event.id


@pytest.mark.postgres
def test_a_later_commit_waits_for_an_earlier_open_transaction(pg_engine: Engine, feeds) -> None:
    sessions = session_factory(pg_engine)
    feed = feeds(pg_engine)
    feed.start()
    held, early = open_event(sessions, "early, still open")
    late = committed_event(sessions, "late, committed first")
    assert early < late
    try:
        # The later id is visible, the earlier is not: nothing may be released yet.
        assert feed.poll() == [] and feed.waiting
        assert feed.poll() == []
        held.commit()
    finally:
        held.close()
    assert ids(feed.poll()) == [early, late]
    assert not feed.waiting and feed.position == late


@pytest.mark.postgres
def test_a_hole_whose_transaction_is_newer_than_the_committer_is_held(pg_engine, feeds) -> None:
    """The committer got its xid first, the hole's owner later: the owner is beyond the
    snapshot's xmax, absent from its in-progress list, and must still be waited for."""
    sessions = session_factory(pg_engine)
    feed = feeds(pg_engine)
    feed.start()
    committer = sessions()
    committer.execute(text("INSERT INTO settings VALUES ('first', '1', 'test', now())"))
    held, early = open_event(sessions, "owner with the newer xid")
    late = publish(committer, "mint_requested", {"label": "older xid, later id"})
    committer.commit()
    committer.close()
    assert early < late.id
    assert feed.poll() == [] and feed.waiting
    held.commit()
    held.close()
    assert ids(feed.poll()) == [early, late.id]


@pytest.mark.postgres
def test_a_rolled_back_hole_is_skipped_as_soon_as_its_transaction_ends(pg_engine, feeds) -> None:
    sessions = session_factory(pg_engine)
    feed = feeds(pg_engine)
    feed.start()
    held, doomed = open_event(sessions, "rolled back")
    after = committed_event(sessions, "after")
    assert feed.poll() == []
    held.rollback()
    held.close()
    # The hole is proved permanent without its timeout (30 s). A transaction of another
    # database that ends between the feed's snapshot and its read of pg_stat_activity (the
    # test databases' background copier, another test worker) is waited for once more,
    # conservatively, so the event may take a poll or two.
    assert ids(_next_events(feed)) == [after]
    assert feed.window.abandoned == 0 and doomed not in ids(feed.poll())


@pytest.mark.postgres
def test_a_rolled_back_hole_also_waits_for_writers_that_were_running(pg_engine, feeds) -> None:
    """Any transaction in progress when the hole was seen might hold it, even one that
    writes no event; the hole is settled when the last of them ends."""
    sessions = session_factory(pg_engine)
    feed = feeds(pg_engine)
    feed.start()
    bystander = sessions()
    bystander.execute(text("INSERT INTO settings VALUES ('x', '1', 'test', now())"))
    held, _ = open_event(sessions, "rolled back")
    after = committed_event(sessions, "after")
    assert feed.poll() == []
    held.rollback()
    held.close()
    assert feed.poll() == [] and feed.waiting
    bystander.commit()
    bystander.close()
    assert ids(_next_events(feed)) == [after]  # a poll or two, as above


@pytest.mark.postgres
def test_a_long_transaction_in_another_database_does_not_hold_a_hole(pg_engine, feeds) -> None:
    """xids are cluster-wide; a writer elsewhere (another app, another test) is ignored."""
    sessions = session_factory(pg_engine)
    feed = feeds(pg_engine)
    feed.start()
    elsewhere = create_engine(pg_admin_url())
    with elsewhere.connect() as other:
        other.execute(text("SELECT pg_current_xact_id()"))  # a running writer, elsewhere
        held, _ = open_event(sessions, "rolled back")
        after = committed_event(sessions, "after")
        assert feed.poll() == []
        held.rollback()
        held.close()
        # Another database's transaction that ended between the feed's snapshot and its
        # read of pg_stat_activity (another test worker's, say) is waited for once more,
        # conservatively: so the next event may take a poll or two, but comes alone.
        assert ids(_next_events(feed)) == [after]
        other.rollback()
    elsewhere.dispose()


@pytest.mark.postgres
def test_a_transaction_open_before_start_is_still_waited_for(pg_engine, feeds) -> None:
    sessions = session_factory(pg_engine)
    held, early = open_event(sessions, "open across the start")
    late = committed_event(sessions, "late")
    feed = feeds(pg_engine)
    feed.start()
    assert feed.position == early - 1
    held.commit()
    held.close()
    assert ids(feed.poll()) == [early, late]


@pytest.mark.postgres
def test_event_ids_are_drawn_after_the_transaction_id(pg_engine) -> None:
    # What the hole proof rests on (migration 0002): plain nextval() assigns no xid.
    with pg_engine.connect() as connection:
        connection.execute(text("SELECT gridtokenx_next_event_id()"))
        xid = connection.scalar(text("SELECT pg_current_xact_id_if_assigned()"))
        connection.rollback()
    assert xid is not None


def test_sqlite_reuses_a_rolled_back_id_so_there_is_no_hole(sqlite_url: str, feeds) -> None:
    engine = create_db_engine(sqlite_url)
    sessions = session_factory(engine)
    feed = feeds(engine)
    feed.start()
    held, doomed = open_event(sessions, "rolled back")
    held.rollback()
    held.close()
    reused = committed_event(sessions, "next")
    assert reused == doomed
    assert ids(feed.poll()) == [reused]
    engine.dispose()


def test_racing_writers_are_read_once_each_in_id_order(engine: Engine, sessions, feeds) -> None:
    """Writers commit and roll back concurrently while the feed reads; nothing is lost,
    repeated or reordered."""
    feed = feeds(engine, batch_size=3)
    feed.start()
    received: list[int] = []
    done = threading.Event()

    def write(worker: int) -> None:
        for n in range(40):
            with sessions() as session:
                publish(session, "mint_requested", {"worker": worker, "n": n})
                session.flush()
                session.rollback() if n % 5 == 0 else session.commit()

    writers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for writer in writers:
        writer.start()
    reader_error: list[BaseException] = []

    def read() -> None:
        try:
            while not done.wait(0.002):  # pacing only: reads race the writers either way
                received.extend(ids(feed.poll()))
        except BaseException as error:  # surfaced below
            reader_error.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    for writer in writers:
        writer.join(60)
    done.set()
    reader.join(30)
    assert not reader_error
    deadline = time.monotonic() + 10
    received.extend(ids(feed.poll()))
    while (feed.waiting or feed.full) and time.monotonic() < deadline:
        received.extend(ids(feed.poll()))
    with sessions() as session:
        committed = list(session.scalars(select(Event.id).order_by(Event.id)))
    assert len(committed) == 4 * 32
    assert received == committed


@pytest.mark.postgres
@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_a_large_batch_behind_a_later_commit(pg_engine, feeds, outcome: str) -> None:
    """3,000 event ids in one transaction, more holes than are listed by id."""
    sessions = session_factory(pg_engine)
    feed = feeds(pg_engine)
    feed.start()
    held = sessions()
    batch = [publish(held, "meter_reading_received", {"n": n}) for n in range(3000)]
    held.flush()
    after = committed_event(sessions, "after the batch")
    assert feed.poll() == [] and len(feed.window.holes()) == 3000
    getattr(held, outcome)()
    held.close()
    released: list[int] = []
    while not released or feed.full:
        released.extend(ids(feed.poll()))
    expected = [e.id for e in batch] if outcome == "commit" else []
    assert released == [*expected, after]
