"""Streaming to callers: time to first token through lmthing against the same ``openai`` SDK
calling the same model server directly, and the history cost of streamed steps.

One embedded dev server, one lmthing worker (``bench/streaming_app.py``, model
``openai:<name>``) and the fake model server (``tests.fakes.FakeModelServer``, in a child
process so that its drip of SSE chunks does not share an event loop with the worker). The
fake streams every reply with a realistic drip: first byte after ``--first-byte-ms``, then
one chunk of ``--chunk-chars`` characters every ``--chunk-ms``.

Modes, interleaved in every round (rotated order), medians over ``--runs`` rounds:

* ``direct``: ``AsyncOpenAI(...).chat.completions.create(stream=True)`` against the fake,
  sending exactly the request bodies lmthing sent (captured in a warm-up run).
* ``lm 250ms`` / ``lm 50ms``: ``start_prompt`` then ``handle.text_stream()``, with
  ``RunConfig(stream_batch_ms=250)`` (the default) and ``50``.
* ``lm off``: ``RunConfig(stream=False)``; the caller follows ``handle.full_stream()`` and
  gets each step's text whole in its ``step_finish`` event.

Usage (from the repository root; both forms work):

    python bench/streaming.py [--runs 12] [--runs3 3] [--first-byte-ms 300] [--chunk-ms 10]
    python -m bench.streaming [...]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script: make ``bench`` and ``tests`` importable (the sandbox re-imports
    # bench.streaming_app; the fake model server lives in tests.fakes).
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import temporalio
from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    QueryWorkflowInput,
    WorkflowHandle,
)

from bench import streaming_app
from bench.overhead import _children_named, _cpu_seconds, med, pct
from lmthing import RunConfig
from lmthing.client import start_prompt
from lmthing.workers import create_worker
from lmthing.workers.dev_server import start_dev_server

TASK_QUEUE = "bench-streaming"
STREAM_SIGNAL = "__temporal_workflow_stream_publish"
POLL_UPDATE = "__temporal_workflow_stream_poll"
# The fake picks the reply from the model name (and the number of tool results so far).
ONE_STEP_MODEL = "bench-1step"
THREE_STEP_MODEL = "bench-3step"
CHARS_PER_TOKEN = 4  # what the fake and the scripted model assume

_PROSE = (
    "Tides are the slow rise and fall of the sea, driven mostly by the pull of the moon. "
    "The moon's gravity is a little stronger on the side of the earth that faces it, so the "
    "ocean there bulges toward it; on the far side the earth itself is pulled away from the "
    "water, leaving a second bulge. As the earth turns beneath these two bulges, most coasts "
    "see two high tides and two low tides a day, about fifty minutes later each day because "
    "the moon moves along its orbit. The sun adds a smaller pull of its own. When sun and moon "
    "line up, at new and full moon, their pulls add into spring tides with the widest range; "
    "at the quarters they partly cancel into neap tides. Coastlines, the depth of the sea floor "
    "and the shape of bays then shape the wave: a funnel like the Bay of Fundy amplifies it to "
    "fifteen metres, while the Mediterranean barely notices it at all. "
)
PREAMBLES = ("Let me look up the first number before I answer. ", "Now the second number, then the answer. ")


def answer_text(tokens: int) -> str:
    """About ``tokens`` tokens of prose (``CHARS_PER_TOKEN`` characters each), cut at a word."""
    want = tokens * CHARS_PER_TOKEN
    text = _PROSE * (want // len(_PROSE) + 1)
    cut = text.rfind(" ", 0, want + 1)
    return text[: cut if cut > 0 else want]


def expected_text(model: str, tokens: int) -> str:
    """Everything the caller should see streamed for a run of ``model``."""
    return answer_text(tokens) if model == ONE_STEP_MODEL else "".join(PREAMBLES) + answer_text(tokens)


# --------------------------------------------------------------------------- fake model server
def reply_for(body: dict[str, Any], args: argparse.Namespace) -> Any:
    """The fake's reply: the model name picks the run shape, tool results so far the step."""
    from tests.fakes import Call, Reply, Usage

    pacing = {"first_byte_delay": args.first_byte_ms / 1000, "chunk_delay": args.chunk_ms / 1000, "chunk_chars": args.chunk_chars}
    answer = answer_text(args.tokens)
    done = sum(1 for m in body.get("messages") or [] if m.get("role") == "tool")
    usage = Usage(input_tokens=200, output_tokens=args.tokens)
    if body.get("model") == THREE_STEP_MODEL and done < 2:
        text = PREAMBLES[done]
        return Reply(text=text, tool_calls=[Call("lookup", {"n": done + 1})], usage=Usage(200, len(text) // CHARS_PER_TOKEN), **pacing)
    return Reply(text=answer, usage=usage, **pacing)


async def serve_fake(args: argparse.Namespace) -> None:
    """Child process: run the fake, print its URL, then one JSON line per request
    (wall-clock arrival time and body); exit when stdin closes."""
    from tests.fakes import FakeModelServer

    async with FakeModelServer() as server:

        def choose(rec: Any) -> Any:
            server.script(choose)  # always one item left: every request is answered
            print(json.dumps({"t": time.time(), "body": rec.body}), flush=True)
            return reply_for(rec.body, args)

        server.script(choose)
        print(json.dumps({"url": server.openai_base_url}), flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        await reader.read()  # EOF: the benchmark is done (or died)


class FakeProcess:
    """The fake model server in a child process, and the requests it logged."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""
        self.requests: list[dict[str, Any]] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self, args: argparse.Namespace) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()), "--serve-fake",
            "--first-byte-ms", str(args.first_byte_ms), "--chunk-ms", str(args.chunk_ms),
            "--chunk-chars", str(args.chunk_chars), "--tokens", str(args.tokens),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        first = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        if not first:
            raise RuntimeError("the fake model server process exited before it started")
        self.url = json.loads(first)["url"]
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.requests.append(json.loads(line))

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        end = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > end:
                raise TimeoutError(f"the fake logged {len(self.requests)} requests, expected {count}")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()  # this benchmark's own child, by handle
            await self.proc.wait()
        if self._reader is not None:
            self._reader.cancel()


# ------------------------------------------------------------------------------ measuring
SERVER_PIDS: list[int] = []


class TerminalQueries(Interceptor):
    """Counts and times the caller's stream-poll *queries*: a subscriber whose poll update
    finds the run already closed reads the rest of the stream with a query, which the
    worker answers by replaying the closed workflow's history."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.cpu = 0.0  # CPU of this process meanwhile: the worker's replay, the run being closed

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        counter = self

        class Outbound(OutboundInterceptor):
            async def query_workflow(self, input: QueryWorkflowInput) -> Any:
                if input.query != POLL_UPDATE:
                    return await super().query_workflow(input)
                t0, c0 = time.perf_counter(), time.process_time()
                try:
                    return await super().query_workflow(input)
                finally:
                    counter.count += 1
                    counter.seconds += time.perf_counter() - t0
                    counter.cpu += time.process_time() - c0

        return Outbound(next)


QUERIES = TerminalQueries()


@dataclass
class Mode:
    name: str
    config: RunConfig | None  # None: direct SDK calls


MODES = [
    Mode("direct", None),
    Mode("lm 250ms", RunConfig(stream_batch_ms=250)),
    Mode("lm 50ms", RunConfig(stream_batch_ms=50)),
    Mode("lm off", RunConfig(stream=False)),
]


@dataclass
class Run:
    ttft: float  # seconds from start to the first text at the caller
    ttlt: float  # ... to the last piece of text
    total: float  # ... to the result (lm) / the end of the last stream (direct)
    cpu: float  # CPU seconds of this process (client + worker, all threads)
    server_cpu: float  # CPU seconds of the dev server
    to_request: float  # seconds from start to the first request at the fake
    t0_wall: float
    handle: WorkflowHandle | None = None
    stream_end: float = float("nan")  # seconds from start to the end of the caller's stream (lm)
    queries: int = 0  # terminal stream queries the caller needed (lm)
    query_time: float = 0.0
    query_cpu: float = 0.0
    # Filled from the history after the timed runs (lm only).
    events: int = 0
    signals: int = 0
    chained: int = 0  # signals sent less than half a batch interval after the previous one
    polls: int = 0
    wf_tasks: int = 0
    first_signal: float | None = None  # seconds from start to the first stream signal (server time)
    closed: float = float("nan")  # seconds from start to the workflow's completion (server time)
    # Seconds from start to the first workflow task's start and completion and to the first
    # activity's start (server times).
    wft_started: float = float("nan")
    wft_completed: float = float("nan")
    activity_started: float = float("nan")


@dataclass
class Results:
    runs: dict[str, list[Run]] = field(default_factory=dict)


async def run_direct(openai_client: Any, bodies: list[dict[str, Any]], fake: FakeProcess, expect: str) -> Run:
    seen = len(fake.requests)
    pieces: list[str] = []
    first = last = 0.0
    s0, c0 = _cpu_seconds(SERVER_PIDS), time.process_time()
    t0_wall, t0 = time.time(), time.perf_counter()
    for body in bodies:  # the bodies already hold the tool results of earlier steps
        stream = await openai_client.chat.completions.create(**body)
        async with stream:
            async for chunk in stream:
                for choice in chunk.choices or []:
                    if choice.delta is not None and choice.delta.content:
                        last = time.perf_counter() - t0
                        first = first or last
                        pieces.append(choice.delta.content)
    total = time.perf_counter() - t0
    cpu, server = time.process_time() - c0, _cpu_seconds(SERVER_PIDS) - s0
    assert "".join(pieces) == expect, "direct: streamed text differs from the scripted reply"
    await fake.wait_for(seen + len(bodies))
    return Run(first, last, total, cpu, server, fake.requests[seen]["t"] - t0_wall, t0_wall)


async def run_lmthing(client: Any, mode: Mode, model: str, steps: int, fake: FakeProcess, expect: str) -> Run:
    assert mode.config is not None
    seen = len(fake.requests)
    pieces: list[str] = []
    first = last = 0.0
    s0, c0, q0, qt0, qc0 = _cpu_seconds(SERVER_PIDS), time.process_time(), QUERIES.count, QUERIES.seconds, QUERIES.cpu
    t0_wall, t0 = time.time(), time.perf_counter()
    handle = await start_prompt(
        client, streaming_app.stream_agent, model=f"openai:{model}", config=mode.config,
        id=f"bench-stream-{uuid.uuid4().hex[:10]}", task_queue=TASK_QUEUE,
    )
    if mode.config.stream:
        async for piece in handle.text_stream():
            last = time.perf_counter() - t0
            first = first or last
            pieces.append(piece)
    else:  # no deltas: each step's text arrives whole with its step_finish event
        async for event in handle.full_stream():
            if event.type == "step_finish" and event.text:
                last = time.perf_counter() - t0
                first = first or last
                pieces.append(event.text)
    stream_end = time.perf_counter() - t0
    result = await handle.result()
    total = time.perf_counter() - t0
    cpu, server = time.process_time() - c0, _cpu_seconds(SERVER_PIDS) - s0
    assert result.steps == steps and result.stop_reason == "answer", result
    assert "".join(pieces) == expect, f"{mode.name}: streamed text differs from the scripted reply"
    await fake.wait_for(seen + steps)
    return Run(
        first, last, total, cpu, server, fake.requests[seen]["t"] - t0_wall, t0_wall, handle=handle.handle,
        stream_end=stream_end, queries=QUERIES.count - q0, query_time=QUERIES.seconds - qt0, query_cpu=QUERIES.cpu - qc0,
    )


async def record_history(run: Run, batch_ms: int | None) -> None:
    history = await run.handle.fetch_history()  # type: ignore[union-attr]
    run.events = len(history.events)
    signal_times: list[float] = []
    at = lambda e: e.event_time.ToMicroseconds() / 1e6 - run.t0_wall
    for e in history.events:
        if e.HasField("workflow_task_started_event_attributes") and math.isnan(run.wft_started):
            run.wft_started = at(e)
        elif e.HasField("workflow_task_completed_event_attributes") and math.isnan(run.wft_completed):
            run.wft_completed = at(e)
        elif e.HasField("activity_task_started_event_attributes") and math.isnan(run.activity_started):
            run.activity_started = at(e)
        if e.HasField("workflow_execution_signaled_event_attributes"):
            if e.workflow_execution_signaled_event_attributes.signal_name == STREAM_SIGNAL:
                signal_times.append(at(e))
        elif e.HasField("workflow_execution_update_accepted_event_attributes"):
            if e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name == POLL_UPDATE:
                run.polls += 1
        elif e.HasField("workflow_task_completed_event_attributes"):
            run.wf_tasks += 1
        elif e.HasField("workflow_execution_completed_event_attributes"):
            run.closed = at(e)
    run.signals = len(signal_times)
    if signal_times:
        run.first_signal = signal_times[0]
    if batch_ms:
        run.chained = sum(1 for a, b in itertools.pairwise(signal_times) if b - a < batch_ms / 2000)


async def measure(
    client: Any, openai_client: Any, fake: FakeProcess, steps: int, runs: int, warmup: int, tokens: int
) -> Results:
    model = ONE_STEP_MODEL if steps == 1 else THREE_STEP_MODEL
    expect = expected_text(model, tokens)
    # Warm-up: lmthing first, so that its request bodies can be replayed by the direct side;
    # ``warmup`` runs per mode (the first of them captures the bodies).
    seen = len(fake.requests)
    await run_lmthing(client, MODES[1], model, steps, fake, expect)
    bodies = [r["body"] for r in fake.requests[seen : seen + steps]]
    assert all(b.get("stream") for b in bodies)
    for w in range(warmup):
        for mode in MODES[2:] if w == 0 else MODES[1:]:
            await run_lmthing(client, mode, model, steps, fake, expect)
        await run_direct(openai_client, bodies, fake, expect)

    results = Results({m.name: [] for m in MODES})
    for i in range(runs):
        k = i % len(MODES)
        for mode in MODES[k:] + MODES[:k]:  # rotate the order every round
            if mode.config is None:
                run = await run_direct(openai_client, bodies, fake, expect)
            else:
                run = await run_lmthing(client, mode, model, steps, fake, expect)
            results.runs[mode.name].append(run)
    # Histories are fetched after the timed runs so that fetching never overlaps a run.
    for mode in MODES[1:]:
        batch_ms = mode.config.stream_batch_ms if mode.config and mode.config.stream else None
        for run in results.runs[mode.name]:
            await record_history(run, batch_ms)
    return results


# ------------------------------------------------------------------------------ reporting
def ms(x: float) -> str:
    return "-" if math.isnan(x) else f"{x * 1e3:.0f}"


def paired(a: list[float], b: list[float]) -> float:
    return med([x - y for x, y in zip(a, b)])


def report(all_results: list[tuple[int, Results]], args: argparse.Namespace) -> None:
    print()
    print(
        f"Reply: ~{args.tokens} tokens ({len(answer_text(args.tokens))} chars) in chunks of {args.chunk_chars} chars, "
        f"first byte after {args.first_byte_ms:.0f} ms, then one chunk every {args.chunk_ms:.0f} ms."
    )
    print("Medians; 'vs direct' = median of the per-round differences (lm run - direct run of the same round).")
    head = (
        f"{'steps':>5} {'mode':<9} {'n':>3} | {'TTFT':>5} {'p10-p90':>9} {'vs direct':>9} | {'last tok':>8} {'vs direct':>9} | "
        f"{'total':>6} {'vs direct':>9} | {'py CPU':>6} {'srv CPU':>7} | {'events':>6} {'/step':>5} | "
        f"{'signals':>7} {'chained':>7} {'polls':>5} {'wf tasks':>8}"
    )
    print(head)
    print("-" * len(head))
    for steps, res in all_results:
        direct = res.runs["direct"]
        for mode in MODES:
            rs = res.runs[mode.name]
            ttft, ttlt, total = [r.ttft for r in rs], [r.ttlt for r in rs], [r.total for r in rs]
            lm = mode.config is not None

            def vs(xs: list[float], ys: list[float], lm: bool = lm) -> str:
                return f"{paired(xs, ys) * 1e3:+.0f}" if lm else ""

            hist = (
                f"{med([r.events for r in rs]):>6.0f} {med([r.events for r in rs]) / steps:>5.1f} | "
                f"{med([r.signals for r in rs]):>7.0f} {med([r.chained for r in rs]):>7.0f} "
                f"{med([r.polls for r in rs]):>5.0f} {med([r.wf_tasks for r in rs]):>8.0f}"
                if lm
                else f"{'':>6} {'':>5} | {'':>7} {'':>7} {'':>5} {'':>8}"
            )
            print(
                f"{steps:>5} {mode.name:<9} {len(rs):>3} | {ms(med(ttft)):>5} "
                f"{ms(pct(ttft, 0.1)) + '-' + ms(pct(ttft, 0.9)):>9} {vs(ttft, [r.ttft for r in direct]):>9} | "
                f"{ms(med(ttlt)):>8} {vs(ttlt, [r.ttlt for r in direct]):>9} | "
                f"{ms(med(total)):>6} {vs(total, [r.total for r in direct]):>9} | "
                f"{med([r.cpu for r in rs]) * 1e3:>6.0f} {med([r.server_cpu for r in rs]) * 1e3:>7.0f} | {hist}"
            )
    print()
    print("Where the first token's time goes (medians, ms from start; server times from history):")
    for steps, res in all_results:
        d = res.runs["direct"]
        d_to_req, d_req_to_tok = med([r.to_request for r in d]), med([r.ttft - r.to_request for r in d])
        print(
            f"  {steps} step(s) direct:   start -> request at model server {d_to_req * 1e3:5.1f}, "
            f"request -> first token at caller {d_req_to_tok * 1e3:5.1f}"
        )
        for mode in MODES[1:3]:
            rs = [r for r in res.runs[mode.name] if r.first_signal is not None]
            if not rs:
                continue
            to_req = med([r.to_request for r in rs])
            req_to_sig = med([r.first_signal - r.to_request for r in rs])  # type: ignore[operator]
            sig_to_caller = med([r.ttft - r.first_signal for r in rs])  # type: ignore[operator]
            wft_s, wft_c, act_s = (med([getattr(r, a) for r in rs]) for a in ("wft_started", "wft_completed", "activity_started"))
            print(
                f"  {steps} step(s) {mode.name:<9} start -> request at model server {to_req * 1e3:5.1f} "
                f"[first workflow task started {wft_s * 1e3:.1f}, completed {wft_c * 1e3:.1f}, "
                f"model activity started {act_s * 1e3:.1f}], request -> first stream signal in history "
                f"{req_to_sig * 1e3:5.1f}, signal -> first token at caller {sig_to_caller * 1e3:5.1f} "
                f"(workflow task, poll update completes, poll reply)"
            )
    print()
    print("After the last token (lm, medians, ms; server times from history):")
    for steps, res in all_results:
        for mode in MODES[1:]:
            rs = res.runs[mode.name]
            print(
                f"  {steps} step(s) {mode.name:<9} last token -> run closed (server) "
                f"{med([r.closed - r.ttlt for r in rs]) * 1e3:5.1f}, run closed -> caller's stream ends "
                f"{med([r.stream_end - r.closed for r in rs]) * 1e3:5.1f}, -> result() {med([r.total - r.stream_end for r in rs]) * 1e3:4.1f}; "
                f"stream ended by a query on the closed run in {sum(1 for r in rs if r.queries)}/{len(rs)} runs "
                f"(median query {med([r.query_time / r.queries for r in rs if r.queries]) * 1e3:.1f} ms, "
                f"{med([r.query_cpu / r.queries for r in rs if r.queries]) * 1e3:.1f} ms CPU here)"
            )
    print()
    print("TTFT: start (start_prompt / the SDK request) -> first text at the caller (text_stream(); with stream")
    print("off, the first step_finish event from full_stream()). last tok: -> the last piece of text. total: ->")
    print("result() returned (direct: the last stream closed). py CPU: CPU of this process (client + worker; the")
    print("fake runs in a child process); srv CPU: the dev server. History: events per run and per model step;")
    print(f"signals: '{STREAM_SIGNAL}' signals (1 event each); chained: signals sent less than half a")
    print(f"batch interval after the previous one; polls: accepted '{POLL_UPDATE}' updates (2 events")
    print("each: accepted, completed); wf tasks: WorkflowTaskCompleted (3 events each: scheduled, started, completed).")


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=12, help="measured rounds of one-step runs (default 12)")
    parser.add_argument("--runs3", type=int, default=3, help="measured rounds of 3-step runs with tool calls (default 3; 0 skips)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up runs per mode, excluded (default 1)")
    parser.add_argument("--tokens", type=int, default=200, help="tokens in the streamed answer (default 200)")
    parser.add_argument("--first-byte-ms", type=float, default=300, help="model server: delay before the reply starts (default 300)")
    parser.add_argument("--chunk-ms", type=float, default=10, help="model server: delay between SSE chunks (default 10)")
    parser.add_argument("--chunk-chars", type=int, default=8, help="model server: characters per text chunk (default 8, ~2 tokens)")
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fake:
        await serve_fake(args)
        return 0
    if args.runs < 1 or args.runs3 < 0 or args.warmup < 1 or args.tokens < 1:
        parser.error("--runs, --warmup and --tokens must be positive, --runs3 not negative")

    import openai

    print(f"temporalio {temporalio.__version__}, openai {openai.__version__}, Python {sys.version.split()[0]}; "
          "starting dev server and fake model server...", flush=True)
    fake = FakeProcess()
    await fake.start(args)
    env = await start_dev_server()
    try:
        # The worker's OpenAI provider reads these on every call.
        os.environ["OPENAI_API_KEY"] = "sk-bench"
        os.environ["OPENAI_BASE_URL"] = fake.url
        openai_client = openai.AsyncOpenAI(api_key="sk-bench", base_url=fake.url, max_retries=0)
        SERVER_PIDS[:] = _children_named("temporal")
        # The caller's client: same connection and converter, plus the query counter.
        caller = Client(**{**env.client.config(), "interceptors": [QUERIES]})
        all_results: list[tuple[int, Results]] = []
        async with create_worker(env.client, app=streaming_app, task_queue=TASK_QUEUE):
            warmup = args.warmup
            for steps, rounds in ((1, args.runs), (3, args.runs3)):
                if not rounds:
                    continue
                t0 = time.perf_counter()
                res = await measure(caller, openai_client, fake, steps, rounds, warmup, args.tokens)
                warmup = 1  # the worker is warm now: later step counts only capture their bodies
                print(f"  {steps} step(s): {rounds} rounds x {len(MODES)} modes in {time.perf_counter() - t0:.1f} s", flush=True)
                all_results.append((steps, res))
        await openai_client.close()
        report(all_results, args)
    finally:
        await env.shutdown()
        await fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
