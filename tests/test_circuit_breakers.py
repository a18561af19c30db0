"""Circuit breakers (issue 16, docs/circuit-breakers.md): the engine-neutral state machine,
the definition-time checks, and breakers shared across runs and workers on a real Temporal
server, in front of a local HTTP service that counts the requests reaching it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from datetime import timedelta

import pytest
from aiohttp import web
from temporalio.client import Client

from lmthing import PromptError, StatefulPrompt
from lmthing.client.breakers import breaker_state, list_breakers, reset_breaker
from lmthing.observability import metrics
from lmthing.resilience import BreakerConfig, BreakerMachine, BreakerSnapshot

from tests.apps.breaker_app import URL_VAR, charge
from tests.support import REPO_ROOT, cli_env, new_id, run, start, worker_process


# ------------------------------------------------------------------ the state machine
def machine(threshold: int = 3, reset: float = 10.0, half_open: int = 1) -> BreakerMachine:
    return BreakerMachine(BreakerSnapshot(name="m", config=BreakerConfig(
        failure_threshold=threshold, reset_timeout_seconds=reset, half_open_requests=half_open)))


def fail(m: BreakerMachine, key: str, now: float) -> None:
    assert m.acquire(key, now, 30).allowed
    m.record(key, False, now, "boom")


def test_closed_opens_after_threshold_consecutive_failures_and_a_success_resets_the_count() -> None:
    m = machine(threshold=3)
    fail(m, "a", 0)
    fail(m, "b", 1)
    assert m.acquire("c", 2, 30).allowed
    m.record("c", True, 2)
    assert m.s.consecutive_failures == 0 and m.s.state == "closed"
    for i, key in enumerate("def"):
        fail(m, key, 3 + i)
    assert m.s.state == "open" and m.s.opened_at == 5 and m.s.totals.opened == 1
    refused = m.acquire("g", 6, 30)
    assert not refused.allowed and refused.state == "open" and refused.half_open_at == 15
    assert "Circuit breaker 'm' is open after 3 consecutive failure(s) (last: boom)" in refused.reason
    assert "half-opens at 1970-01-01T00:00:15.000Z (in 9.0 s)" in refused.reason


def test_open_half_opens_after_the_reset_timeout_on_the_next_acquire_and_a_probe_decides() -> None:
    m = machine(threshold=1, reset=10)
    fail(m, "a", 0)
    assert not m.acquire("b", 9.9, 30).allowed  # not yet
    probe = m.acquire("c", 10, 30)
    assert probe.allowed and probe.probe and m.s.state == "half_open"
    busy = m.acquire("d", 11, 30)  # one probe only: the others fail fast
    assert not busy.allowed and busy.state == "half_open" and "half-open" in busy.reason
    m.record("c", False, 12, "still down")  # a failed probe opens it again, from now
    assert m.s.state == "open" and m.s.opened_at == 12
    assert m.acquire("e", 22, 30).probe
    m.record("e", True, 23)
    assert m.s.state == "closed" and m.s.consecutive_failures == 0 and m.s.permits == []


def test_half_open_closes_only_when_all_its_probes_succeed() -> None:
    m = machine(threshold=1, reset=1, half_open=2)
    fail(m, "a", 0)
    assert m.acquire("p1", 1, 30).probe and m.acquire("p2", 1, 30).probe
    assert not m.acquire("p3", 1, 30).allowed
    m.record("p1", True, 2)
    assert m.s.state == "half_open"
    assert not m.acquire("p4", 2, 30).allowed  # p1 passed, p2 under way: both slots taken
    m.record("p2", True, 3)
    assert m.s.state == "closed"


def test_a_probe_permit_whose_holder_died_expires_with_its_lease() -> None:
    m = machine(threshold=1, reset=1)
    fail(m, "a", 0)
    assert m.acquire("dead", 1, lease_seconds=5).probe  # its worker is killed: it never reports
    assert not m.acquire("other", 5.9, 30).allowed
    retried = m.acquire("dead", 3, 5)  # the retry of the same activity: its own permit, renewed
    assert retried.allowed and retried.probe and m.s.permits[0].expires_at == 8
    assert not m.acquire("other", 7.9, 30).allowed
    taken = m.acquire("other", 8, 30)  # the lease ended: the slot is free, with no verdict
    assert taken.allowed and taken.probe and m.s.totals.expired_permits == 1 and m.s.state == "half_open"
    m.record("dead", False, 9, "late")  # a report for a permit the breaker no longer holds
    assert m.s.state == "half_open" and m.s.totals.stale_reports == 1
    m.record("other", True, 9)
    assert m.s.state == "closed"


def test_reports_from_before_an_opening_are_stale_and_a_cancelled_call_gives_its_permit_back() -> None:
    m = machine(threshold=1, reset=1)
    assert m.acquire("slow", 0, 30).allowed
    fail(m, "a", 0)  # opens: the permit of "slow" is void
    m.record("slow", True, 0.5)
    assert m.s.state == "open" and m.s.totals.stale_reports == 1
    assert m.acquire("probe", 1, 30).probe
    m.record("probe", None, 1.5)  # cancelled: no verdict
    assert m.s.state == "half_open" and m.s.totals.released == 1
    assert m.acquire("next", 1.6, 30).probe  # the slot is free again


def test_refusal_predicts_acquire_without_changing_anything_and_reset_closes() -> None:
    m = machine(threshold=1, reset=10)
    fail(m, "a", 0)
    before = m.snapshot()
    assert m.refusal("b", 5) is not None and m.refusal("b", 10) is None  # at 10 a probe would be let through
    assert m.snapshot() == before
    assert m.reset(1).state == "closed" and m.acquire("c", 1, 30).allowed


def test_the_config_is_checked_with_the_fix_named() -> None:
    with pytest.raises(ValueError, match=r"failure_threshold must be a whole number >= 1, got -1; e.g. failure_threshold=5"):
        BreakerConfig.of("x", failure_threshold=-1)
    with pytest.raises(ValueError, match="reset_timeout must be a positive number of seconds"):
        BreakerConfig.of("x", reset_timeout=0)
    with pytest.raises(ValueError, match="half_open_requests must be a whole number >= 1"):
        BreakerConfig.of("x", half_open_requests=True)
    assert BreakerConfig.of("x", reset_timeout=timedelta(minutes=2)).reset_timeout_seconds == 120


# ------------------------------------------------------------------ definition time
async def body_of(fn) -> StatefulPrompt:
    p = StatefulPrompt()
    await p.run_body(fn)
    return p


async def test_bad_breaker_definitions_are_refused_where_they_are_made() -> None:
    with pytest.raises(PromptError, match=r"def_circuit_breaker\('pay'\): failure_threshold must be a whole number >= 1, got -3"):
        await body_of(lambda p: p.def_circuit_breaker("pay", failure_threshold=-3))
    with pytest.raises(PromptError, match="circuit breaker name 'has space' is not valid"):
        await body_of(lambda p: p.def_circuit_breaker("has space"))

    def in_workflow(p):
        p.def_circuit_breaker("pay")
        p.def_tool("add", "Add", None, lambda args: 1, circuit_breaker="pay")

    with pytest.raises(PromptError, match=r"def_tool\('add'\): circuit_breaker='pay' needs an @tool function"):
        await body_of(in_workflow)

    def unknown(p):
        p.def_circuit_breaker("payments")
        p.def_tool(charge, circuit_breaker="paymnets")

    p = await body_of(unknown)  # the breaker may come later in the function: checked before the model call
    with pytest.raises(PromptError, match=r"circuit breaker 'paymnets' is not defined; declare it with "
                                          r"p.def_circuit_breaker\('paymnets', ...\) in the prompt function \(defined: payments\)"):
        await p.prepare_step(0)

    def later(p):
        p.def_tool(charge, circuit_breaker="payments")
        p.def_circuit_breaker("payments", failure_threshold=2)

    prepared = await (await body_of(later)).prepare_step(0)
    assert prepared.breakers["payments"].failure_threshold == 2
    assert prepared.callables["charge"].circuit_breaker == "payments"


# ------------------------------------------------------------------ on Temporal
class PaymentService:
    """A local HTTP dependency: answers ``status`` (after ``delay`` seconds), counts requests."""

    def __init__(self) -> None:
        self.status = 500
        self.delay = 0.0
        self.requests = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        body = await request.json()
        return web.json_response({"charged": body.get("order")} if self.status < 400 else {"error": "down"}, status=self.status)

    async def __aenter__(self) -> PaymentService:
        app = web.Application()
        app.router.add_post("/charge", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


@pytest.fixture
async def service(monkeypatch):
    async with PaymentService() as s:
        monkeypatch.setenv(URL_VAR, s.url)
        yield s


async def lmthing_cli(client: Client, *args: str) -> tuple[int, str]:
    """``lmthing ARGS --address <the test server>`` in a subprocess (the worker here keeps serving)."""
    address = client.service_client.config.target_host
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lmthing", *args, "--address", address, cwd=REPO_ROOT, env=cli_env(COLUMNS="200"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, " ".join(out.decode().split())


def tool_message(steps) -> str:
    """What the model was shown as the tool's result (the tool message of the second call)."""
    return next(m.content for m in steps[1].request.messages if m.role == "tool")


async def test_a_breaker_opens_over_three_runs_fails_fast_half_opens_and_closes(client: Client, worker, service) -> None:
    name = new_id("payments")
    args = {"breaker": name, "threshold": 5, "reset": 4.0}

    # Three runs against a service that answers 500: each attempt counts (two per call).
    for n, expected_requests in ((1, 2), (2, 4)):
        result, steps = await run(client, "pays", args)
        assert "payment service answered 500" in result.text and service.requests == expected_requests, n
        assert (await breaker_state(client, name)).consecutive_failures == expected_requests
    result, steps = await run(client, "pays", args)
    # The 5th failure (the third run's first attempt) opened it; its retry failed fast.
    assert service.requests == 5
    opened = await breaker_state(client, name)
    assert opened.state == "open" and opened.consecutive_failures == 5 and opened.totals.failures == 5
    assert f"Circuit breaker '{name}' is open after 5 consecutive failure(s)" in result.text

    # The fourth run's call fails fast: nothing reaches the service.
    result, steps = await run(client, "pays", args)
    assert service.requests == 5
    shown = tool_message(steps)
    assert shown == result.text and shown.startswith(f"Circuit breaker '{name}' is open after 5 consecutive failure(s) "
                                                     "(last: RuntimeError: payment service answered 500)")
    assert "calls fail fast without reaching the dependency until it half-opens at" in shown
    assert steps[0].tool_results[0].is_error

    # Visible: the metric (0 closed, 1 half-open, 2 open; fast failures counted) and the CLI.
    assert metrics.value("lmthing_circuit_breaker_state", {"breaker": name}) == 2
    assert metrics.value("lmthing_circuit_breaker_fast_failures_total", {"breaker": name}) == 2
    code, out = await lmthing_cli(client, "breakers", name)
    assert code == 0 and f"{name} open (5 consecutive failure(s); half-opens at" in out, out
    code, out = await lmthing_cli(client, "breakers")
    assert code == 0 and f"{name} open" in out, out
    assert name in [b.name for b in await list_breakers(client)]

    # After the reset timeout the next call is a probe; the service is back: it closes.
    await asyncio.sleep(max(0.0, opened.half_open_at - time.time()) + 0.2)
    service.status = 200
    result, steps = await run(client, "pays", args)
    assert json.loads(result.text) == {"charged": "o-1"} and service.requests == 6
    closed = await breaker_state(client, name)
    assert closed.state == "closed" and closed.consecutive_failures == 0 and closed.totals.opened == 1
    assert metrics.value("lmthing_circuit_breaker_state", {"breaker": name}) == 0
    code, out = await lmthing_cli(client, "breakers", name, "--json")
    assert code == 0 and json.loads(out)[0]["state"] == "closed", out

    # The breaker's history says what it did: update-with-start, then acquire and record updates.
    history = await client.get_workflow_handle(f"lmthing-breaker:{name}").fetch_history()
    updates = [e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
               for e in history.events if e.HasField("workflow_execution_update_accepted_event_attributes")]
    assert updates.count("acquire") == 6 and updates.count("record") == 6  # refusals left no event
    described = await client.get_workflow_handle(f"lmthing-breaker:{name}").describe()
    assert described.workflow_type == "lmthing.circuit_breaker" and await described.static_summary() == f"circuit breaker {name}"


async def test_reset_closes_an_open_breaker_from_the_cli(client: Client, worker, service) -> None:
    name = new_id("reset-me")
    await run(client, "pays", {"breaker": name, "threshold": 1, "reset": 600})
    assert (await breaker_state(client, name)).state == "open"
    code, out = await lmthing_cli(client, "breakers", name, "--reset")
    assert code == 0 and f"{name} closed" in out, out
    service.status = 200
    result, _ = await run(client, "pays", {"breaker": name, "threshold": 1, "reset": 600})
    assert json.loads(result.text) == {"charged": "o-1"}
    code, out = await lmthing_cli(client, "breakers", "no-such-breaker")
    assert code == 2 and "No circuit breaker 'no-such-breaker'" in out
    with pytest.raises(LookupError):
        await reset_breaker(client, "no-such-breaker")


async def test_a_worker_killed_holding_the_probe_does_not_leave_the_breaker_stuck(dev_env, client: Client, service, tmp_path) -> None:
    address = client.service_client.config.target_host
    queue = new_id("breaker-q")
    name = new_id("kill")
    args = {"breaker": name, "threshold": 1, "reset": 1.0}
    app = "tests.apps.breaker_app"
    async with worker_process(address, queue, "breaker-w1", tmp_path, app=app) as w1:
        await (await start(client, "pays_slowly", args, task_queue=queue)).result()  # one failure opens it
        assert (await breaker_state(client, name)).state == "open"
        await asyncio.sleep(1.2)
        service.status, service.delay = 200, 30.0  # the service holds the probe's request
        holder = await start(client, "pays_slowly", args, task_queue=queue)
        for _ in range(200):
            if service.requests == 2:
                break
            await asyncio.sleep(0.05)
        assert service.requests == 2, w1.stderr()
        probing = await breaker_state(client, name)
        assert probing.state == "half_open" and len(probing.permits) == 1 and probing.permits[0].probe
        w1.kill()  # SIGKILL mid-probe: nothing reports the probe's outcome
        await w1.proc.wait()
    await holder.handle.terminate("its worker died")  # and no retry will come back for the permit
    service.delay = 0.0
    async with worker_process(address, queue, "breaker-w2", tmp_path, app=app):
        held = await breaker_state(client, name)
        assert held.state == "half_open" and [p.key for p in held.permits] == [p.key for p in probing.permits]
        # While the dead worker's lease runs, other calls fail fast (the probe slot is taken).
        result = await (await start(client, "pays_slowly", args, task_queue=queue)).result()
        assert f"Circuit breaker '{name}' is half-open" in result.text and service.requests == 2
        # When it ends, the slot is free: the next call probes, succeeds, and closes the breaker.
        await asyncio.sleep(max(0.0, held.permits[0].expires_at - time.time()) + 0.2)
        result = await (await start(client, "pays_slowly", args, task_queue=queue)).result()
        assert json.loads(result.text) == {"charged": "o-2"} and service.requests == 3
        after = await breaker_state(client, name)
        assert after.state == "closed" and after.totals.expired_permits == 1


@contextlib.asynccontextmanager
async def model_behind_breaker(client: Client, monkeypatch, config: BreakerConfig, *script):
    """A worker for ModelBehindBreaker (one model call with ``ModelRequest.circuit_breaker``
    set) against a fake OpenAI server playing ``script``: yields (call, fake, breaker name)."""
    from lmthing.prompt.types import Message, ModelRequest
    from lmthing.resilience import CircuitBreakerRef
    from lmthing.workers import create_worker
    from tests.apps.breaker_app import ModelBehindBreaker
    from tests.fakes.server import FakeModelServer

    queue = new_id("breaker-model-q")
    name = new_id("provider")
    request = ModelRequest(model="openai:gpt-4o", conversation={"messages": [Message(role="user", content="hi")]},
                           circuit_breaker=CircuitBreakerRef(name=name, config=config, task_queue=queue)).model_dump(mode="json")
    async with FakeModelServer() as fake:
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
        fake.script(*script)
        async with create_worker(client, app="tests.apps.breaker_app", task_queue=queue, workflows=[ModelBehindBreaker]):
            async def call() -> dict:
                return await client.execute_workflow("breaker_model_probe", request, id=new_id("model"), task_queue=queue)

            yield call, fake, name


async def test_a_model_call_behind_a_breaker_fails_fast_once_it_is_open(client: Client, monkeypatch) -> None:
    from tests.fakes.server import Fault, Reply

    config = BreakerConfig(failure_threshold=2, reset_timeout_seconds=600)
    script = (Fault.server_error(500), Fault.server_error(500), Reply(text="never"))
    async with model_behind_breaker(client, monkeypatch, config, *script) as (call, fake, name):
        first, second = await call(), await call()
        assert first["error_type"] != "CircuitOpen" and second["error_type"] != "CircuitOpen"
        assert len(fake.requests) == 2 and (await breaker_state(client, name)).state == "open"
        third = await call()
        assert third["error_type"] == "CircuitOpen" and f"Circuit breaker '{name}' is open" in third["error"]
        assert len(fake.requests) == 2  # the provider was not called


async def test_a_permanent_model_error_is_no_verdict(client: Client, monkeypatch) -> None:
    from tests.fakes.server import Fault, Reply

    async with model_behind_breaker(client, monkeypatch, BreakerConfig(failure_threshold=1),
                                    Fault.bad_request(), Reply(text="fine")) as (call, fake, name):
        bad = await call()
        assert bad["error_type"] not in (None, "CircuitOpen")
        state = await breaker_state(client, name)
        assert state.state == "closed" and state.totals.released == 1 and state.totals.failures == 0
        assert await call() == {"text": "fine"}
