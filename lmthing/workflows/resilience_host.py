"""A run's resilience, workflow side: the book the prompt function fills (``def_retry``,
``def_fallback``, ``def_guard``, ``def_validator``), the model cascade, and the checks the
tool runner makes around a call (guards before, validators after, fallbacks on failure).

What it decides is recorded where a reader looks: which model answered a step and why the
others did not (``StepRecord.answered_by`` / ``model_failures``), and which guard stopped a
call or which fallback answered it (the step's ``orchestration`` notes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from lmthing.prompt.humans import ApprovalPolicy
from lmthing.prompt.stateful_prompt import PromptError, StatefulPrompt
from lmthing.prompt.types import ModelRequest, ModelResponse
from lmthing.resilience.book import GuardDef, ResilienceBook
from lmthing.resilience.breaker import CircuitBreakerRef
from lmthing.resilience.domains import DomainAllowlist, refusal, refused_message
from lmthing.resilience.checks import CheckError, GuardCheck, Verdict, guard_holds, validate
from lmthing.resilience.specs import ModelChoice, ModelPolicy, ResilienceError, RetrySpec

from .errors import cause_message
from .retries import failure_type, with_retries

# Calls one model once (one activity, under the given retry policy).
CallModel = Callable[[ModelRequest, RetrySpec | None], Awaitable[ModelResponse]]

ANSWER_RETRY_MESSAGE = (
    "Your answer did not pass validation: {errors}\nAnswer again, fixing that."
)


class AllModelsFailed(Exception):
    """Every model of a cascade failed for good; ``failures`` says how each did."""

    def __init__(self, failures: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{f['model']}: {f['error']}" for f in failures))
        self.failures = failures


@dataclass
class GuardOutcome:
    """A guard that did not let a call run: ``result`` is what the model is told."""

    guard: str
    action: str
    result: Any
    is_error: bool


@dataclass
class RunResilience:
    book: ResilienceBook = field(default_factory=ResilienceBook)
    # Failed validations per tool so far (carried across continue-as-new).
    validation_failures: dict[str, int] = field(default_factory=dict)
    # The prompt's def_circuit_breaker configs at this step (for a cascade's models).
    breakers: dict[str, Any] = field(default_factory=dict)
    # The domain allowlists of the runs above this one (its run config's).
    inherited_domains: list[DomainAllowlist] = field(default_factory=list)

    def begin(self) -> None:
        """Before the prompt function runs: its definitions are made anew."""
        self.book.clear()

    def check(self, prompt: StatefulPrompt) -> None:
        """After it ran: every name its tools, agents and guards use is defined."""
        tools, agents = prompt.defined_callables()
        try:
            self.book.check(tools, agents, prompt.approval_names())
        except ResilienceError as err:
            raise PromptError(str(err)) from None

    # ------------------------------------------------------------------------ models
    def model_policy(self, given: ModelPolicy | None, retry: str | None, fallback: str | None, model: str,
                     where: str) -> ModelPolicy | None:
        """The run's model policy: the one its run config carries (a sub-agent's, from its
        parent), else the prompt's own ``@prompt(retry=, fallback=)``."""
        if given is not None:
            return given
        try:
            return self.book.model_policy(retry, fallback, model, where)
        except ResilienceError as err:
            raise PromptError(str(err)) from None

    def child_policy(self, retry: str | None, fallback: str | None, model: str, where: str) -> ModelPolicy | None:
        """The policy a sub-agent's run is given for its def_agent(retry=, fallback=)."""
        return self.model_policy(None, retry, fallback, model, where)

    async def call_models(self, policy: ModelPolicy, request: ModelRequest, call: CallModel
                          ) -> tuple[ModelResponse, str, list[dict[str, Any]]]:
        """Ask the cascade's models in order until one answers: ``(response, the model
        that answered, how the ones before it failed)``. Raises :class:`AllModelsFailed`."""
        failures: list[dict[str, Any]] = []
        for index, choice in enumerate(policy.cascade):
            if index and policy.retry_delay:
                await workflow.sleep(timedelta(seconds=policy.retry_delay),
                                     summary=f"fallback {policy.fallback}: next model {choice.model}")
            try:
                response = await self._call_choice(choice, request, call)
                return response, choice.model, failures
            except ActivityError as err:
                if is_cancelled_exception(err):
                    raise
                failures.append({"model": choice.model, "error": cause_message(err), "type": failure_type(err)})
        raise AllModelsFailed(failures)

    async def _call_choice(self, choice: ModelChoice, request: ModelRequest, call: CallModel) -> ModelResponse:
        update: dict[str, Any] = {"model": choice.model}
        if choice.circuit_breaker is not None:  # this model's calls sit behind a def_circuit_breaker
            config = self.breakers.get(choice.circuit_breaker)
            if config is None:
                raise PromptError(f"def_fallback: circuit_breaker={choice.circuit_breaker!r} is not defined; define it "
                                  f"with p.def_circuit_breaker({choice.circuit_breaker!r}, ...)")
            update["circuit_breaker"] = CircuitBreakerRef(name=choice.circuit_breaker, config=config,
                                                          task_queue=workflow.info().task_queue)
        one = request.model_copy(update=update)
        return await with_retries(choice.retry, lambda: call(one, choice.retry))

    # ------------------------------------------------------------------------- guards
    async def guard(self, name: str, guards: tuple[str, ...], state: dict[str, Any], args: Any, step: int,
                    ask: Callable[[ApprovalPolicy, str], Awaitable[Any]] | None) -> GuardOutcome | None:
        """Check the guards of tool or agent ``name``; the first that fails decides."""
        for guard in self.book.guards_of(name, guards):
            try:
                if await guard_holds(guard, GuardCheck(state=state, args=args, tool=name, step=step)):
                    continue
            except CheckError as err:
                raise ApplicationError(str(err), type="GuardError", non_retryable=True) from None
            outcome = await self._guard_failed(guard, name, ask)
            if outcome is not None:
                return outcome
        return None

    async def _guard_failed(self, guard: GuardDef, name: str,
                            ask: Callable[[ApprovalPolicy, str], Awaitable[Any]] | None) -> GuardOutcome | None:
        reason = guard.message or f"the condition of guard '{guard.name}' does not hold"
        if guard.on_fail == "skip":
            return GuardOutcome(guard.name, "skip", {"skipped": True, "guard": guard.name, "reason": reason}, False)
        if guard.on_fail == "ask" and ask is not None:
            policy = ApprovalPolicy(guard.approval or f"guard:{guard.name}")
            record = await ask(policy, f"Guard '{guard.name}' stops '{name}': {reason}. Run it anyway?")
            if record.action != "deny":
                return None  # a person let it run
            return GuardOutcome(guard.name, "denied", {"denied": True, "guard": guard.name, "by": record.by,
                                                       "reason": record.reason or reason}, True)
        return GuardOutcome(guard.name, "throw", {"error": f"Guard '{guard.name}' failed: {reason}"}, True)

    # ------------------------------------------------------------------------- domains
    def allowlists(self) -> list[DomainAllowlist]:
        """Every allowlist this run's tool calls must pass: inherited, then its own."""
        return [*self.inherited_domains, *self.book.domains.values()]

    def domain_refusal(self, tool: str, args: Any) -> tuple[str, dict[str, Any]] | None:
        """Why ``tool`` may not run with ``args`` (a host no allowlist allows), and the note."""
        refused = refusal(args, self.allowlists())
        if refused is None:
            return None
        host, allowlist = refused
        return refused_message(host, allowlist), {"kind": "domains", "tool": tool, "host": host,
                                                  "constraint": allowlist.name}

    # ------------------------------------------------------------------------ validators
    async def validate_output(self, validator: str | None, output: Any) -> Verdict | None:
        if validator is None:
            return None
        try:
            return await validate(self.book.validators[validator], output)
        except CheckError as err:
            raise ApplicationError(str(err), type="ValidatorError", non_retryable=True) from None

    def tool_retry_allowed(self, tool: str, max_retries: int) -> bool:
        """Count one failed validation of ``tool``; whether the model may still try again."""
        used = self.validation_failures.get(tool, 0)
        self.validation_failures[tool] = used + 1
        return used < max_retries

    async def check_answer(self, value: Any, attempts: int) -> tuple[str | None, bool]:
        """The answer validators' error (None: valid) and whether the model may try again
        (``attempts``: the answer's failed validations so far in this turn)."""
        for validator in self.book.answer_validators():
            try:
                verdict = await validate(validator, value)
            except CheckError as err:
                raise ApplicationError(str(err), type="ValidatorError", non_retryable=True) from None
            if not verdict.valid:
                return verdict.message(validator.name), attempts < validator.max_retries
        return None, False
