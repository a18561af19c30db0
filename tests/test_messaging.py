"""Long-lived agents, topics, mailboxes and the blackboard on a real Temporal server
(docs/messaging.md). Every count is by message id, read from the agents' own state."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError

from lmthing.client import get_handle
from lmthing.client.messaging import (
    Board,
    BoardConflictError,
    MessageRefused,
    ReceiverFull,
    ask_agent,
    create_topic,
    follow_team,
    publish,
    start_agent,
    subscribe,
    topic_info,
)
from lmthing.messaging.types import MAX_MESSAGE_BYTES, AgentReply, MessageError

from tests.support import TEST_TASK_QUEUE, new_id, start, temporal_cli

Q = {"task_queue": TEST_TASK_QUEUE}


async def processed(client: Client, agent_id: str) -> list[str]:
    return (await get_handle(client, agent_id).state()).get("processed", [])


async def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_a_long_lived_agent_answers_every_message_in_one_conversation(client: Client, worker) -> None:
    agent = await start_agent(client, "echo_agent", id=new_id("echo"), **Q)
    replies = [await agent.ask(f"hello {i}") for i in range(3)]
    assert [r.text for r in replies] == ["echo: hello 0", "echo: hello 1", "echo: hello 2"]
    assert [r.turn for r in replies] == [0, 1, 2]
    # Each reply's usage is its own turn's; the totals are the status's.
    assert replies[2].usage.input_tokens > replies[0].usage.input_tokens > 0
    assert (await agent.status()).usage.input_tokens == sum(r.usage.input_tokens for r in replies)
    # One conversation: the third turn's model call saw the first two turns.
    steps = await agent.steps()
    assert [m.content for m in steps[-1].request.messages if m.role == "user"] == ["hello 0", "hello 1", "hello 2"]
    assert await processed(client, agent.id) == [r.message_id for r in replies]

    # The same id is the same agent: start_agent connects, and the conversation goes on.
    again = await start_agent(client, "echo_agent", id=agent.id, **Q)
    assert (await again.ask("still there?")).turn == 3
    status = await again.status()
    assert status.turns == 4 and status.phase == "waiting"

    # A signal (fire and forget) is answered on the stream.
    message_id = await agent.tell("by signal")
    reply = None
    async for event in agent.full_stream():
        if event.type == "reply" and event.message_id == message_id:
            reply = event
            break
    assert reply is not None and reply.text == "echo: by signal"

    result = await agent.stop()
    assert result.text == "echo: by signal" and len(result.state["processed"]) == 5


async def test_an_ask_sent_again_gets_the_same_reply_and_is_processed_once(client: Client, worker) -> None:
    agent = await start_agent(client, "echo_agent", id=new_id("echo"), **Q)
    first = await agent.ask("once", id="m-1")
    second = await agent.ask("once", id="m-1")
    assert first == second
    await agent.tell("once", id="m-1")  # a repeat by signal is dropped too
    assert (await agent.ask("next")).turn == 1
    assert (await processed(client, agent.id)).count("m-1") == 1
    # The repeated ask never reached the handler (Temporal answered it by its update id);
    # the repeated signal did, and the mailbox dropped it.
    assert (await agent.inbox())["duplicates"] == 1


async def test_messages_sent_while_the_agent_continues_as_new_are_all_answered(client: Client, worker) -> None:
    agent = await start_agent(client, "echo_agent", id=new_id("echo"), config={"turns_per_run": 3}, **Q)
    asks = [asyncio.ensure_future(agent.ask(f"ask {i}", id=f"ask-{i}")) for i in range(20)]
    told = [await agent.tell(f"tell {i}", id=f"tell-{i}") for i in range(10)]
    replies = await asyncio.wait_for(asyncio.gather(*asks), 120)
    assert [r.text for r in replies] == [f"echo: ask {i}" for i in range(20)]
    ids = [f"ask-{i}" for i in range(20)] + told
    done = await wait_for(lambda: _all_processed(client, agent.id, ids), 60, "every message processed")
    assert sorted(done) == sorted(ids) and len(done) == len(set(done))  # each exactly once
    status = await agent.status()
    # It continued as new every 3 turns, except while asks it held were still unanswered
    # (those it answers first: their callers wait on this run).
    assert status.continued_runs >= 2 and status.turns == 30


async def _all_processed(client: Client, agent_id: str, ids: list[str]) -> list[str] | None:
    seen = await processed(client, agent_id)
    return seen if set(ids) <= set(seen) else None


async def test_a_full_mailbox_refuses_then_the_sender_waits_and_nothing_is_lost(client: Client, worker) -> None:
    agent = await start_agent(client, "slow_agent", id=new_id("slow"), mailbox_size=2, **Q)
    raw = client.get_workflow_handle(agent.id)
    # Raw updates, no waiting: what does not fit is refused with a reason, not dropped.
    outcomes = await asyncio.gather(
        *(raw.execute_update("ask", {"id": f"raw-{i}", "content": f"raw {i}"}) for i in range(6)), return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, WorkflowUpdateFailedError)]
    answered = [o for o in outcomes if not isinstance(o, BaseException)]
    assert refused and answered and len(refused) + len(answered) == 6
    assert all(o.cause.type == "MailboxFull" and "mailbox full" in o.cause.message for o in refused)
    accepted = [f"raw-{i}" for i, o in enumerate(outcomes) if not isinstance(o, BaseException)]
    # lmthing's client waits on a full mailbox and sends again: every ask is answered.
    replies = await asyncio.gather(*(agent.ask(f"patient {i}", id=f"patient-{i}") for i in range(6)))
    assert [r.text for r in replies] == [f"slow: patient {i}" for i in range(6)]
    done = await processed(client, agent.id)
    assert sorted(done[: len(accepted)]) == sorted(accepted)  # taken first (in the order they arrived)
    assert sorted(done[len(accepted):]) == sorted(f"patient-{i}" for i in range(6))
    # A sender that will not wait gets a clear error.
    burst = [asyncio.ensure_future(agent.ask(f"b {i}", wait_while_full=0)) for i in range(6)]
    results = await asyncio.gather(*burst, return_exceptions=True)
    full = [r for r in results if isinstance(r, ReceiverFull)]
    assert full and "mailbox full" in str(full[0])


async def test_a_topic_delivers_every_message_to_every_subscriber_in_order(client: Client, worker) -> None:
    topic = new_id("news")
    agents = [new_id("listener") for _ in range(3)]
    for agent_id in agents:
        await subscribe(client, topic, agent_id, "topic_listener", **Q)  # started by their first delivery
    receipts = [await publish(client, topic, f"item {i}", id=f"{topic}-{i}", **Q) for i in range(10)]
    assert [r.seq for r in receipts] == list(range(10)) and {r.subscribers for r in receipts} == {3}
    want = [f"{topic}-{i}" for i in range(10)]
    for agent_id in agents:
        assert await wait_for(lambda a=agent_id: _seen(client, a, len(want)), 60, f"{agent_id} got all") == want
    # A repeat of a publish is recorded once: same receipt, not delivered again.
    repeat = await publish(client, topic, "item 0", id=f"{topic}-0", **Q)
    assert repeat.duplicate and repeat.seq == 0
    info = await topic_info(client, topic)
    assert {s.agent_id: s.delivered for s in info.subscribers} == dict.fromkeys(agents, 10) and info.waiting == 0


async def _seen(client: Client, agent_id: str, count: int) -> list[str] | None:
    """The message ids the agent processed, once there are ``count``; None before (or while
    the agent is not started yet)."""
    try:
        seen = await processed(client, agent_id)
    except Exception:  # noqa: BLE001  (not started yet)
        return None
    return seen if len(seen) >= count else None


async def test_a_publish_to_a_topic_without_subscribers_is_recorded_for_nobody(client: Client, worker) -> None:
    topic = new_id("empty")
    receipt = await publish(client, topic, "anyone?", **Q)
    assert receipt.subscribers == 0 and receipt.seq == 0 and not receipt.duplicate
    info = await topic_info(client, topic)
    assert info.next_seq == 1 and info.waiting == 0 and info.subscribers == []


async def test_a_full_topic_makes_the_publisher_wait_and_loses_nothing(client: Client, worker) -> None:
    topic = new_id("narrow")
    await create_topic(client, topic, backlog=3, **Q)
    subscriber = new_id("slow")
    await subscribe(client, topic, subscriber, "slow_agent", config={"mailbox_size": 1}, **Q)
    with pytest.raises(ReceiverFull, match="is full"):
        for i in range(20):
            await publish(client, topic, f"quick {i}", id=f"quick-{i}", wait_while_full=0, **Q)
    taken = [f"quick-{i}" for i in range(i)]
    for j in range(5):  # these wait for room
        await publish(client, topic, f"patient {j}", id=f"patient-{j}", **Q)
    want = taken + [f"patient-{j}" for j in range(5)]
    assert await wait_for(lambda: _seen(client, subscriber, len(want)), 90, "every message delivered") == want


async def test_agents_share_a_board_with_compare_and_set(client: Client, worker) -> None:
    board = Board(client, new_id("board"), **Q)
    first = await board.write("plan", {"step": 1}, expected_version=0, writer="planner")
    assert first.version == 1
    with pytest.raises(BoardConflictError, match="expected version 0, the board holds version 1 \\(written by planner\\)"):
        await board.write("plan", {"step": 2}, expected_version=0)
    assert (await board.write("plan", {"step": 2}, expected_version=1)).version == 2
    assert (await board.read("plan")).value == {"step": 2}
    # An agent writes through its board tools; the model sees a conflict as an answer.
    writer = await start_agent(client, "board_writer", id=new_id("writer"), **Q)
    assert '"ok":true' in (await writer.ask("first note")).text
    assert '"ok":false' in (await writer.ask("second note")).text and "conflict on 'note'" in (await writer.steps())[-1].request.messages[-1].content
    contents = await Board(client, "tests", **Q).contents()
    assert contents["note"].value == "first note" and contents["note"].writer == writer.id


async def test_an_agent_publishes_with_its_tool_and_a_subscriber_gets_it(client: Client, worker) -> None:
    relay, reply, seen = await _published_to_a_listener(client, "relay", "relay_agent", "pass it on")
    assert '"subscribers":' in reply.text
    assert seen[0].startswith(f"{relay}:")


async def _published_to_a_listener(client: Client, topic: str, prompt: str, text: str) -> tuple[str, AgentReply, list[str]]:
    """Subscribe a listener to ``topic``, ask agent ``prompt`` ``text`` (it publishes there):
    the agent's id, its reply, and what the listener processed."""
    listener = new_id("listener")
    await subscribe(client, topic, listener, "topic_listener", **Q)
    agent = await start_agent(client, prompt, id=new_id(prompt), **Q)
    reply = await agent.ask(text)
    seen = await wait_for(lambda: _seen(client, listener, 1), 30, f"{prompt}'s message")
    return agent.id, reply, seen


async def test_an_agent_subscribes_itself_from_its_prompt(client: Client, worker) -> None:
    agent = await start_agent(client, "self_subscriber", id=new_id("self"), **Q)
    topic = new_id("own")
    await agent.ask({"subscribe": [topic]})
    await publish(client, topic, "for you", id="own-1", **Q)
    assert await wait_for(lambda: _seen(client, agent.id, 1), 30, "delivery") == ["own-1"]
    assert (await agent.state())["_lmthing_subscribed"] == [topic]


async def test_ask_agent_starts_an_agent_that_is_not_running(client: Client, worker) -> None:
    agent_id = new_id("lazy")
    reply = await ask_agent(client, "echo_agent", agent_id, "wake up", **Q)
    assert reply.text == "echo: wake up" and reply.turn == 0
    assert (await ask_agent(client, "echo_agent", agent_id, "again", **Q)).turn == 1


async def test_a_message_sent_with_the_temporal_cli_is_answered(client: Client, worker) -> None:
    agent = await start_agent(client, "echo_agent", id=new_id("cli"), **Q)
    code, out = await temporal_cli(client, "workflow", "update", "execute", "--workflow-id", agent.id, "--name", "ask",
                                   "--input", '{"id": "cli-1", "content": "hi from the CLI"}')
    assert code == 0 and "echo: hi from the CLI" in out, out
    code, out = await temporal_cli(client, "workflow", "signal", "--workflow-id", agent.id, "--name", "message",
                                   "--input", '{"id": "cli-2", "content": "a signal"}')
    assert code == 0, out
    assert await wait_for(lambda: _seen(client, agent.id, 2), 30, "signal processed") == ["cli-1", "cli-2"]
    code, out = await temporal_cli(client, "workflow", "update", "execute", "--workflow-id", agent.id, "--name", "ask",
                                   "--input", '"just text"')
    assert code != 0 and "A message is a JSON object" in out, out


async def test_follow_team_merges_the_streams_of_several_agents(client: Client, worker) -> None:
    a = await start_agent(client, "echo_agent", id=new_id("a"), **Q)
    b = await start_agent(client, "echo_agent", id=new_id("b"), **Q)
    events = []

    async def collect() -> None:
        async for event in follow_team(client, a.id, b.id, until_idle=5):
            events.append(event)
            if sum(e.type == "reply" for e in events) == 2:
                return

    follower = asyncio.ensure_future(collect())
    await asyncio.sleep(0.5)
    await asyncio.gather(a.ask("to a"), b.ask("to b"))
    await asyncio.wait_for(follower, 30)
    replies = {e.source: e.text for e in events if e.type == "reply"}
    assert replies == {a.id: "echo: to a", b.id: "echo: to b"}


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("just text", "A message is a JSON object"),
        ({"content": "no id"}, "id"),
        ({"id": "x"}, "content"),
        ({"id": "", "content": "x"}, "non-empty id"),
        ({"id": "big", "content": "x" * (MAX_MESSAGE_BYTES + 1)}, "over the limit"),
    ],
    ids=["not-an-object", "no-id", "no-content", "empty-id", "oversized"],
)
async def test_a_malformed_message_is_refused_with_the_reason(client: Client, worker, message, error) -> None:
    agent = await start_agent(client, "echo_agent", id=new_id("bad"), **Q)
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await client.get_workflow_handle(agent.id).execute_update("ask", message)
    assert caught.value.cause.type == "InvalidMessage" and error in caught.value.cause.message
    assert (await agent.inbox())["accepted"] == 0  # nothing half-taken
    assert (await agent.ask("fine")).turn == 0  # and the agent goes on


def test_an_oversized_message_is_refused_before_it_is_sent() -> None:
    from lmthing.messaging.types import new_message

    with pytest.raises(MessageError, match="over the limit of 262,144"):
        new_message("x" * (MAX_MESSAGE_BYTES + 1))


async def test_bad_targets_are_named(client: Client, worker) -> None:
    with pytest.raises(MessageRefused, match="No prompt named 'no_such_agent'"):
        await subscribe(client, new_id("t"), new_id("a"), "no_such_agent", **Q)
    with pytest.raises(ValueError, match="Topic name 'has space' is not valid"):
        await publish(client, "has space", "x", **Q)
    # A message to an agent type no worker knows names the types there are.
    with pytest.raises(MessageRefused, match="No prompt or workflow named 'no_such_agent'.*Known: .*echo_agent"):
        await ask_agent(client, "no_such_agent", new_id("unknown"), "hello?", **Q)
    # A message to a run that is not a long-lived agent says how to start one.
    run = await start(client, "hello")
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await client.get_workflow_handle(run.id).execute_update("ask", {"id": uuid.uuid4().hex, "content": "hi"})
    assert caught.value.cause.type == "NotLongLived" and "start_agent" in caught.value.cause.message


async def test_100_messages_to_3_subscribers_survive_a_worker_sigkill(dev_env, client: Client, tmp_path) -> None:
    """Every subscriber processes every message once, in publish order, although the worker
    running the topic, the agents and the deliveries is SIGKILLed in the middle."""
    from tests.support import worker_process

    address = client.service_client.config.target_host
    queue = new_id("messaging-q")
    topic = new_id("chaos")
    agents = [new_id("sub") for _ in range(3)]
    want = [f"{topic}-{i}" for i in range(100)]
    app = "tests.apps.messaging_app"
    async with worker_process(address, queue, "first-worker", tmp_path, app=app) as first:
        for agent_id in agents:
            await subscribe(client, topic, agent_id, "topic_listener", task_queue=queue)
        publishing = asyncio.ensure_future(_publish_all(client, topic, want, queue))
        await wait_for(lambda: _seen(client, agents[0], 15), 60, "first deliveries")
        first.kill()
        await first.proc.wait()
    assert not publishing.done()
    async with worker_process(address, queue, "second-worker", tmp_path, app=app) as second:
        receipts = await asyncio.wait_for(publishing, 120)
        assert [r.seq for r in receipts] == list(range(100))
        for agent_id in agents:
            got = await wait_for(lambda a=agent_id: _seen(client, a, len(want)), 120, f"{agent_id}: all 100\n{second.stderr()}")
            assert got == want  # 100 processed, none lost, none twice, in order
    history = await client.get_workflow_handle(f"lmthing-topic:{topic}").fetch_history()
    identities = {e.workflow_task_started_event_attributes.identity for e in history.events
                  if e.HasField("workflow_task_started_event_attributes")}
    assert {"first-worker", "second-worker"} <= identities


async def _publish_all(client: Client, topic: str, ids: list[str], queue: str) -> list:
    return [await publish(client, topic, f"message {i}", id=message_id, task_queue=queue) for i, message_id in enumerate(ids)]


async def test_lmthing_chat_talks_for_three_turns_and_a_second_session_resumes(client: Client, worker) -> None:
    from tests.support import REPO_ROOT, cli_env

    address = client.service_client.config.target_host
    agent_id = new_id("chat")
    queue = new_id("chat-q")

    async def session(lines: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            "python", "-m", "lmthing", "chat", "tests/apps/messaging_app.py", "--prompt", "echo_agent", "--id", agent_id,
            "--address", address, "--task-queue", queue, cwd=REPO_ROOT, env=cli_env(),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(lines.encode()), 90)
        assert proc.returncode == 0, out.decode()
        return out.decode()

    first = await session("one\ntwo\nthree\n")
    assert "Chatting with echo_agent" in first
    assert [line for line in first.splitlines() if line.startswith("agent>")] == [
        "agent> echo: one", "agent> echo: two", "agent> echo: three"]
    second = await session("four\n/quit\n")
    assert f"Resuming {agent_id}: 3 earlier turn(s)" in second and "you: one" in second and "agent: echo: three" in second
    assert "agent> echo: four" in second
    from lmthing.workers import create_worker

    async with create_worker(client, app="tests.apps.messaging_app", task_queue=queue):  # to answer the query
        steps = await get_handle(client, agent_id).steps()
    assert [m.content for m in steps[-1].request.messages if m.role == "user"] == ["one", "two", "three", "four"]


async def test_the_research_team_demo_coordinates_through_topics_and_the_board(client: Client) -> None:
    """examples/research_team.py end to end: the merged stream shows all three agents."""
    import examples.research_team as demo
    from lmthing.workers import create_worker

    queue = new_id("team-q")
    lines: list[str] = []
    async with create_worker(client, app=demo, task_queue=queue):
        outcome = await asyncio.wait_for(demo.run_demo(client, queue, prefix=new_id("team"), show=lines.append), 120)
    board, ids = outcome["board"], outcome["ids"]
    assert board["answer"].writer == ids["synthesizer"]
    assert all(demo.NOTES[t] in board["answer"].value for t in demo.TOPICS)
    assert {board[f"finding:{t}"].writer for t in demo.TOPICS} == {ids["retriever"]}
    sources = {e.source for e in outcome["events"]}
    assert set(ids.values()) <= sources
    assert any(line.startswith("[retriever] -> search_notes") for line in lines)
    assert any(line.startswith("[synthesizer] -> board_write") for line in lines)


async def test_an_agent_sends_to_another_agent_which_is_started_for_it(client: Client, worker) -> None:
    target = new_id("target")
    forwarder = await start_agent(client, "forwarder", id=new_id("fwd"), **Q)
    await forwarder.ask({"to": target, "text": "passed along"}, id="fwd-1")
    seen = await wait_for(lambda: _seen(client, target, 1), 30, "forwarded message")
    assert seen == [f"{forwarder.id}:send:fwd-1"]  # the id says who sent it and why: a repeat is dropped
    conversation = await get_handle(client, target).handle.query("conversation")
    assert conversation[-1]["content"] == "echo: passed along"
    # p.publish from the prompt function: once per key (the receipt kept in def_state).
    listener = new_id("listener")
    topic = new_id("fwd-topic")
    await subscribe(client, topic, listener, "topic_listener", **Q)
    await forwarder.ask({"topic": topic, "text": "to the topic"}, id="fwd-2")
    assert await wait_for(lambda: _seen(client, listener, 1), 30, "published") == [f"{forwarder.id}:publish:fwd-2"]
    assert (await forwarder.state())["_lmthing_sent"]["publish:fwd-2"]["subscribers"] == 1


async def test_a_tool_publishes_with_the_workers_client(client: Client, worker) -> None:
    announcer, reply, seen = await _published_to_a_listener(client, "announcements", "announcer", "the news")
    assert '"subscribers":' in reply.text
    assert seen[0].startswith(f"{announcer}:")  # the tool's idempotency key: a retried tool publishes once


async def test_follow_team_follows_the_sub_agents_a_run_starts_and_a_topics_subscribers(client: Client, worker) -> None:
    run = await start(client, "single")  # tests/apps/agents_app.py: one def_agent sub-agent
    events = [e async for e in follow_team(client, run.id, until_idle=20)]
    children = {e.workflow_id for e in events if e.type == "agent_start"}
    assert children and children <= {e.source for e in events}  # the child's own events are in
    assert {e.type for e in events if e.source in children} >= {"step_start", "finish"}

    topic = new_id("followed")
    listeners = [new_id("listener") for _ in range(2)]
    for agent_id in listeners:
        await subscribe(client, topic, agent_id, "topic_listener", **Q)
    seen: list = []

    async def collect() -> None:
        async for event in follow_team(client, topics=[topic], until_idle=10):
            seen.append(event)
            if sum(e.type == "reply" for e in seen) == 2:
                return

    follower = asyncio.ensure_future(collect())
    await publish(client, topic, "to both", **Q)
    await asyncio.wait_for(follower, 30)
    assert {e.source for e in seen if e.type == "reply"} == set(listeners)


async def test_a_publish_the_topic_refuses_is_the_tools_error_and_the_agent_goes_on(client: Client, worker) -> None:
    agent = await start_agent(client, "loose_relay", id=new_id("loose"), **Q)
    reply = await agent.ask("not a topic!")
    assert "Topic name 'not a topic!' is not valid" in reply.text and "failed" in reply.text
    ok = await agent.ask(new_id("fine-topic"))
    assert '"subscribers":0' in ok.text and ok.turn == 1
