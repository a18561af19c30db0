"""The engine-neutral state machines of lmthing.messaging: a mailbox, a topic, a board."""

from __future__ import annotations

import pytest

from lmthing.messaging import BoardConflict, BoardState, Inbox, MailboxFull, Subscriber, TopicState, new_message
from lmthing.messaging.board import BoardCarry, BoardWrite
from lmthing.messaging.topic import TopicCarry, TopicFull


def test_a_mailbox_drops_repeats_by_id_and_by_topic_position() -> None:
    inbox = Inbox(bound=10)
    first = new_message("a", id="m1")
    assert inbox.accept(first) and not inbox.accept(first)
    from_topic = new_message("b", id="t-0").model_copy(update={"topic": "news", "seq": 0})
    assert inbox.accept(from_topic)
    # The same topic position under another id is a repeat too (a redelivered batch).
    assert not inbox.accept(new_message("b", id="other").model_copy(update={"topic": "news", "seq": 0}))
    assert inbox.duplicates == 2 and [m.id for m in inbox.pending] == ["m1", "t-0"]
    # What it has seen survives continue-as-new.
    again = Inbox(bound=10, state=inbox.state())
    assert not again.accept(first) and again.topic_seq == {"news": 0}


def test_a_full_mailbox_refuses_but_a_forced_message_is_kept_and_counted() -> None:
    inbox = Inbox(bound=1)
    inbox.accept(new_message("a"))
    with pytest.raises(MailboxFull, match="1 of 1 messages wait"):
        inbox.accept(new_message("b"))
    assert inbox.accept(new_message("c"), force=True) and inbox.overflowed == 1 and len(inbox) == 2


def test_a_topic_keeps_what_the_slowest_subscriber_lacks_and_bounds_it() -> None:
    topic = TopicState(TopicCarry(name="news", backlog=3))
    assert topic.publish(new_message("nobody")).subscribers == 0 and topic.log == []
    topic.subscribe(Subscriber(agent_id="fast", prompt="p"))
    topic.subscribe(Subscriber(agent_id="slow", prompt="p"))
    for i in range(3):
        topic.publish(new_message(f"m{i}", id=f"m{i}"))
    with pytest.raises(TopicFull, match="slowest subscriber is 'fast'"):
        topic.check_room()
    topic.delivered("fast", topic.batch_for("fast"))
    assert len(topic.log) == 3  # slow still lacks all three
    topic.delivered("slow", topic.batch_for("slow")[:2])
    assert [m.id for m in topic.log] == ["m2"] and topic.batch_for("slow")[0].seq == 3
    repeat = topic.publish(new_message("m0", id="m0"))
    assert repeat.duplicate and repeat.seq == 1
    carried = TopicState(topic.carry())
    assert carried.publish(new_message("m1", id="m1")).duplicate and carried.subscribers["slow"].cursor == 3


def test_a_board_compares_and_sets() -> None:
    board = BoardState(BoardCarry(name="b"))
    assert board.apply(BoardWrite(key="k", value=1, expected_version=0, writer="a")).version == 1
    with pytest.raises(BoardConflict, match="expected version 0, the board holds version 1 \\(written by a\\)"):
        board.apply(BoardWrite(key="k", value=2, expected_version=0))
    assert board.apply(BoardWrite(key="k", value=2)).version == 2  # no expectation: last writer wins
    with pytest.raises(ValueError, match="has no value"):
        board.check(BoardWrite(key="k"))
    board.apply(BoardWrite(key="k", delete=True, expected_version=2))
    assert board.contents() == {} and BoardState(board.carry()).writes == 3
