"""One model step of a prompt workflow: re-run the prompt function, prepare the request,
call the model (one activity, or a model policy's cascade), and the run's model and
options. A mixin of :class:`~lmthing.workflows.prompt_workflow.PromptWorkflow`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic_core import to_jsonable_python
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from lmthing.activities.names import MODEL_CALL
from lmthing.memory.cache import model_call_cache
from lmthing.observability import tracing
from lmthing.prompt.conversation import RequestSender
from lmthing.prompt.lifecycle import ModelCallEvent
from lmthing.prompt.stateful_prompt import PersistedStateNeeded, PreparedStep, StatefulPrompt
from lmthing.prompt.tools import schema_of
from lmthing.prompt.types import Conversation, ModelOptions, ModelRequest, ModelResponse, StepRecord

from . import routing
from .agent_body import AgentBody
from .config import RunConfig
from .errors import cause_message
from .resilience_host import AllModelsFailed
from .retries import retry_policy


# Each persisted def_state key declared for the first time runs the prompt function again.
MAX_PERSISTED_KEYS = 50


class ModelCalls:
    """The model step; the attributes are the workflow's (set in its ``__init__``)."""

    def _model_of(self, config: RunConfig, body: AgentBody) -> str:
        """The run's model: the run config's, else the agent's, else the prompt's (an agent the
        run was handed to uses its own model first)."""
        model = (body.model if body.handed_off else None) or config.model or body.model or self.spec.model
        if not model and config.model_policy is not None and config.model_policy.cascade:
            model = config.model_policy.cascade[0].model
        if not model and self.spec.fallback and not config.agent_path:
            model = f"fallback:{self.spec.fallback}"  # the cascade's models answer (docs/resilience.md)
        if not model:
            raise ApplicationError(
                f"Prompt '{self.spec.name}' has no model: pass model= to @prompt, to run_prompt(), "
                f"or in the run config ({{\"model\": \"provider:model_id\"}}), or use `lmthing run --model`.",
                type="ConfigError",
                non_retryable=True,
            )
        if self._span is not None:
            self._span.set_attribute(tracing.REQUEST_MODEL, model)
        return model

    def _options_of(self, config: RunConfig, body: AgentBody) -> ModelOptions:
        """The prompt's own model options, overridden field by field by the run config's."""
        options = ModelOptions.model_validate({**self.spec.options, **config.options.model_dump(exclude_none=True)})
        if body.response_schema is not None and options.response_format is None:
            options.response_format = {"name": body.response_schema.__name__, "schema": schema_of(body.response_schema)}
        return options

    async def _model_step(
        self, prompt: StatefulPrompt, body: AgentBody, config: RunConfig, model: str, options: ModelOptions, step: int,
        incoming: str | None = None, no_tools: bool = False,
    ) -> tuple[PreparedStep, StepRecord, ModelResponse]:
        """Re-run the prompt function, prepare the step and call the model."""
        # A sub-agent started by the function itself (an orchestration) finds its definition
        # by re-running the function from the state it started with.
        self._prepared_state = to_jsonable_python(prompt.state)
        self._resilience.begin()
        self._context.begin()
        await self._run_body(prompt, body)
        self._resilience.check(prompt)
        self._budget.configure()
        if incoming is not None:
            prompt.record_user(incoming)
        prepared = await prompt.prepare_step(step)
        self._resilience.breakers = prepared.breakers
        self._prepared_state = prepared.state_snapshot
        request = ModelRequest(
            model=model,
            system=prepared.system,
            conversation=Conversation(messages=prepared.messages),
            tools=[] if no_tools else prepared.tools,
            options=options,
            step=step,
            workflow_id=workflow.info().workflow_id,
            agent=self._agent_label(config),
            # An output moderation that blocks or filters holds the text back until it is checked:
            # the step's text then comes once, moderated, on its step_finish event.
            stream_batch_ms=config.stream_batch_ms if config.stream and not self._moderation.holds_output() else None,
            rate_limit=self._budget.rate_root() if self._budget.active else None,
            budget_root=self._budget.report_root() if self._budget.active else None,
        )
        context = None
        if self._context.active:  # def_context: the window (and a summary) of this call, docs/context.md
            messages, context = await self._context.shape(
                prompt, prepared.system, prepared.messages, request.tools, request,
                lambda asked: self._call_summary(asked, config), self._summary_model(model))
            request.conversation = Conversation(messages=messages)
        cache = model_call_cache(self._memory.caches, request.model_dump(
            mode="json", include={"model", "system", "conversation", "tools", "options"}), self._memory.scope)
        if cache is not None:
            request.cache = cache.model_dump(mode="json")
        record = StepRecord(step=step, request=request, orchestration=prompt.take_notes(), context=context)
        self._steps.append(record)
        self._status.step = step
        await self._moderation.inputs(request.messages, step, record.moderation)  # raises Blocked
        self._status.phase = "model"
        await self._fire("before_model_call", lambda: ModelCallEvent(name="before_model_call", step=step, request=request))
        self._events.step_start(step)
        response = await self._call_model(request, config, record, body, model)
        if cache is not None:
            record.orchestration.append({"kind": "cache", "cache": cache.name, "model_call": True, "hit": response.cached})
        await self._fire(
            "after_model_call",
            lambda: ModelCallEvent(name="after_model_call", step=step, request=request, response=response),
        )
        record.response = response
        return prepared, record, response

    async def _run_body(self, prompt: StatefulPrompt, body: AgentBody) -> None:
        """Run the prompt function; a def_state(..., persist=True) it declares for the first
        time stops it there, is loaded from the memory store, and the function runs again."""
        for _ in range(MAX_PERSISTED_KEYS):
            try:
                await prompt.run_body(body.call)
                return
            except PersistedStateNeeded:
                await self._persisted.load(prompt)
        raise ApplicationError(f"Prompt '{self.spec.name}' declares more than {MAX_PERSISTED_KEYS} persisted def_state "
                               "keys; keep them in fewer keys (a dict in one key)", type="PromptError", non_retryable=True)

    async def _call_model(self, request: ModelRequest, config: RunConfig, record: StepRecord, body: AgentBody,
                          model: str) -> ModelResponse:
        """The step's model call: one activity under the run config's retry policy, or, with
        a model policy (``def_retry`` / ``def_fallback`` cascade), its models in order."""
        policy = self._resilience.model_policy(config.model_policy, self.spec.retry if not config.agent_path else None,
                                               self.spec.fallback if not config.agent_path else None, model,
                                               f"@prompt({self.spec.name!r})")
        try:
            if policy is None:
                return await self._call_model_once(request, config, None)
            response, record.answered_by, record.model_failures = await self._resilience.call_models(
                policy, request, lambda one, retry: self._call_model_once(one, config, retry, True))
            return response
        except AllModelsFailed as failed:
            record.model_failures = failed.failures
            raise ApplicationError(
                f"The model call of step {request.step} failed with every model of fallback '{policy.fallback}': {failed}"
                if policy is not None and policy.fallback else
                f"The model call of step {request.step} ({request.model}) failed: {failed.failures[-1]['error']}",
                type="ModelCallFailed",
                non_retryable=True,
            ) from None
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise  # the run itself is being cancelled (a parallel group's loser, a timeout): it ends cancelled
            raise ApplicationError(
                f"The model call of step {request.step} ({request.model}) failed: {cause_message(err)}",
                type="ModelCallFailed",
                non_retryable=True,
            ) from None

    async def _call_model_once(self, request: ModelRequest, config: RunConfig, retry: Any,
                               via_policy: bool = False) -> ModelResponse:
        if self._sender is None:
            self._sender = RequestSender()
        # What is new since the previous call, see prompt/conversation.py (a layout of it
        # when def_context rearranged the conversation).
        wire = self._sender.wire(request, rearranged=self._context.active)
        return await workflow.execute_activity(
            MODEL_CALL,
            wire,
            result_type=ModelResponse,
            task_queue=routing.model_task_queue(),
            start_to_close_timeout=timedelta(seconds=config.model_timeout_seconds),
            heartbeat_timeout=timedelta(seconds=config.model_heartbeat_seconds),
            retry_policy=retry_policy(retry, _model_retry(config)),
            # Under a model policy the history says which model each call asked.
            summary=request.model if retry is not None or via_policy else None,
        )

    async def _call_summary(self, request: ModelRequest, config: RunConfig) -> ModelResponse:
        """A def_context summary call: the model-call activity, sent as a delta of the run's
        conversation like a step's call (docs/context.md), under the run's model retries."""
        if self._sender is None:
            self._sender = RequestSender()
        try:
            response = await workflow.execute_activity(
                MODEL_CALL,
                self._sender.wire(request, rearranged=True),
                result_type=ModelResponse,
                task_queue=routing.model_task_queue(),
                start_to_close_timeout=timedelta(seconds=config.model_timeout_seconds),
                heartbeat_timeout=timedelta(seconds=config.model_heartbeat_seconds),
                retry_policy=_model_retry(config),
                summary=SUMMARY_CALL,
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            raise ApplicationError(
                f"The context summary before step {request.step} ({request.model}) failed: {cause_message(err)}. "
                "def_context(strategy='summarize') needs a model that answers; set model= on def_context to use another",
                type="ContextSummaryFailed",
                non_retryable=True,
            ) from None
        if self._budget.active:  # the tree's budget counts the summary (a crossing shows at the step's own call)
            await self._budget.spent(response.usage, response.cost_usd, response.budget)
        return response

    def _summary_model(self, model: str) -> str:
        """The model that writes def_context summaries: its own model=, else the run's (the
        first of a cascade when the run's model is one)."""
        spec = self._context.book.spec
        if spec is not None and spec.model:
            return spec.model
        if model.startswith("fallback:"):
            cascade = self._resilience.book.cascades.get(model.split(":", 1)[1])
            if cascade is not None and cascade.entries:
                return cascade.entries[0][0]
        return model


# The activity summary of a def_context summary call in history (docs/context.md).
SUMMARY_CALL = "summarize context"


def _model_retry(config: RunConfig) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=60),
        maximum_attempts=config.model_max_attempts,
    )
