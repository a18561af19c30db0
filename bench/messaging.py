"""Topic delivery against a hand-written fan-out of Temporal signals (issue 15).

For 1, 3 and 10 subscribers, M messages are published one after another by one publisher:
- lmthing: ``publish`` to a topic (an update on the topic workflow), which delivers to each
  subscribed long-lived agent (the ``lmthing.deliver`` activity, an update on the agent),
  which answers each message as a turn (one scripted model call);
- baseline: the publisher signals every subscriber workflow itself (one signal each, sent
  concurrently), and each runs one activity per message.

Latency is from the publish call to the moment the subscriber's activity for that message
runs (the model call / the baseline's activity notes the time), per delivery; throughput is
deliveries per second from the first publish to the last delivery. Same embedded dev server,
same worker process, same data converter; the two sides run one after the other.

    python bench/messaging.py [--messages 30] [--subscribers 1,3,10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.worker import Worker

from lmthing.client.messaging import publish, start_agent, subscribe
from lmthing.workers import create_worker, sandbox_runner
from lmthing.workers.dev_server import start_dev_server

from bench import messaging_app
from bench.messaging_app import BenchSignalSubscriber, bench_process
from bench.messaging_clock import REACHED

LM_QUEUE = "bench-messaging-lmthing"
BASE_QUEUE = "bench-messaging-baseline"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def wait_reached(ids: list[str], per_message: int, timeout: float = 300.0) -> None:
    deadline = time.time() + timeout
    while any(len(REACHED.get(i, [])) < per_message for i in ids):
        if time.time() > deadline:
            missing = sum(per_message - len(REACHED.get(i, [])) for i in ids)
            raise SystemExit(f"{missing} deliveries did not arrive in {timeout} s")
        await asyncio.sleep(0.02)


async def run_lmthing(client, subscribers: int, messages: int, stream: bool) -> dict[str, float]:
    tag = uuid.uuid4().hex[:6]
    topic = f"bench-{tag}"
    agents = [f"bench-sub-{tag}-{n}" for n in range(subscribers)]
    config = {"stream": stream}  # stream off: no text-delta signals to the agents' callers
    for agent_id in agents:
        await start_agent(client, "bench_subscriber", id=agent_id, task_queue=LM_QUEUE, config=config)
        await subscribe(client, topic, agent_id, "bench_subscriber", task_queue=LM_QUEUE, config=config)
    await publish(client, topic, f"warm-{tag}", task_queue=LM_QUEUE)  # the topic and agents are warm
    await wait_reached([f"warm-{tag}"], subscribers)
    ids = [f"{tag}-{i}" for i in range(messages)]
    sent: dict[str, float] = {}
    start = time.time()
    for message_id in ids:
        sent[message_id] = time.time()
        await publish(client, topic, message_id, id=message_id, task_queue=LM_QUEUE)
    await wait_reached(ids, subscribers)
    return summarize(ids, sent, start, subscribers)


async def run_baseline(client, subscribers: int, messages: int) -> dict[str, float]:
    tag = uuid.uuid4().hex[:6]
    handles = [await client.start_workflow(BenchSignalSubscriber.run, id=f"bench-base-{tag}-{n}", task_queue=BASE_QUEUE)
               for n in range(subscribers)]
    warm = f"warm-{tag}"
    await asyncio.gather(*(h.signal(BenchSignalSubscriber.message, warm) for h in handles))
    await wait_reached([warm], subscribers)
    ids = [f"{tag}-{i}" for i in range(messages)]
    sent: dict[str, float] = {}
    start = time.time()
    for message_id in ids:
        sent[message_id] = time.time()
        await asyncio.gather(*(h.signal(BenchSignalSubscriber.message, message_id) for h in handles))
    await wait_reached(ids, subscribers)
    for h in handles:
        await h.signal(BenchSignalSubscriber.stop)
    return summarize(ids, sent, start, subscribers)


def summarize(ids: list[str], sent: dict[str, float], start: float, subscribers: int) -> dict[str, float]:
    latencies = [(t - sent[i]) * 1000 for i in ids for t in REACHED[i]]
    end = max(t for i in ids for t in REACHED[i])
    return {"per_s": len(ids) * subscribers / (end - start), "p50": statistics.median(latencies),
            "p90": percentile(latencies, 0.9)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=30)
    parser.add_argument("--subscribers", default="1,3,10")
    args = parser.parse_args()
    counts = [int(n) for n in args.subscribers.split(",")]
    env = await start_dev_server(extra_args=["--log-level", "never"])
    client = env.client
    try:
        lm = create_worker(client, app=messaging_app, task_queue=LM_QUEUE)
        base = Worker(client, task_queue=BASE_QUEUE, workflows=[BenchSignalSubscriber], activities=[bench_process],
                      workflow_runner=sandbox_runner())
        rows = []
        async with lm, base:
            for n in counts:
                theirs = await run_baseline(client, n, args.messages)
                ours = await run_lmthing(client, n, args.messages, stream=True)
                quiet = await run_lmthing(client, n, args.messages, stream=False)
                rows.append((n, ours, quiet, theirs))
        print(f"{args.messages} messages, one publisher; deliveries = messages x subscribers\n")
        print("| subscribers | signals: deliveries/s, p50 / p90 ms | lmthing: deliveries/s (x signals), p50 / p90 ms "
              "| lmthing, stream off: deliveries/s (x signals), p50 / p90 ms |")
        print("|---:|---:|---:|---:|")
        for n, ours, quiet, theirs in rows:
            cells = [f"{r['per_s']:.1f} ({r['per_s'] / theirs['per_s']:.2f}x), {r['p50']:.0f} / {r['p90']:.0f}" for r in (ours, quiet)]
            print(f"| {n} | {theirs['per_s']:.1f}, {theirs['p50']:.0f} / {theirs['p90']:.0f} | {cells[0]} | {cells[1]} |")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)
