"""How a prompt workflow's step ends: the answer checked against the response schema and
the answer validators (and asked for again), the model's text after moderation, the tool
calls of a step that crossed the budget, and the last answer a budget asks for. A mixin of
:class:`~lmthing.workflows.prompt_workflow.PromptWorkflow`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmthing.prompt.agents import parse_structured
from lmthing.prompt.stateful_prompt import StatefulPrompt
from lmthing.prompt.types import StepRecord, ToolCall, ToolResult, add_cost
from lmthing.resilience.budget import FINAL_INSTRUCTIONS, Crossing

from .config import RunConfig
from .moderation_host import Blocked
from .resilience_host import ANSWER_RETRY_MESSAGE

if TYPE_CHECKING:
    from .prompt_workflow import RunProgress

SCHEMA_RETRY_MESSAGE = (
    "Your previous response could not be used: {error}\n"
    "Respond again with only a JSON object that matches the schema."
)


class StepEndings:
    """The step's end; the attributes are the workflow's (set in its ``__init__``)."""

    async def _answer_again(self, prompt: StatefulPrompt, run: RunProgress, record: StepRecord, text: str,
                            first_step: int, max_steps: int) -> bool:
        """Whether the model is asked to answer again: its answer does not match the
        response schema, or fails a ``def_validator(answer=True)``, and retries are left.
        Otherwise the answer stands, with its parsed value and error on ``run``."""
        run.structured, run.validation_error = None, None
        steps_left = run.step - first_step < max_steps
        if run.body.response_schema is not None:
            run.structured, run.validation_error = parse_structured(text, run.body.response_schema)
            if run.validation_error is not None:
                if run.schema_attempts < run.body.schema_retries and steps_left:
                    run.schema_attempts += 1
                    self._engine_says(prompt, SCHEMA_RETRY_MESSAGE.format(error=run.validation_error))
                    return True
                return False
        error, again = await self._resilience.check_answer(run.structured if run.structured is not None else text,
                                                           run.answer_attempts)
        run.validation_error = error
        if error is not None and again and steps_left:
            run.answer_attempts += 1
            record.orchestration.append({"kind": "validation", "target": "answer", "error": error})
            self._engine_says(prompt, ANSWER_RETRY_MESSAGE.format(errors=error))
            return True
        return False

    def _skip_tools(self, prompt: StatefulPrompt, record: StepRecord, calls: list[ToolCall], step: int,
                    crossing: Crossing) -> None:
        """The tool calls of the step that crossed the budget do not run; the conversation
        gets an error result for each, so it stays well-formed."""
        if not calls:
            return
        message = f"Not run: the budget '{crossing.name}' is used up ({crossing.detail})"
        results = [ToolResult(tool_call_id=c.id, name=c.name, result={"error": message}, is_error=True, content=message)
                   for c in calls]
        record.tool_results = results
        self._events.tool_results(step, results)
        prompt.record_tool_results(results, {c.id: c.args for c in calls})

    async def _final_answer(self, prompt: StatefulPrompt, run: RunProgress, config: RunConfig, crossing: Crossing) -> str | None:
        """``graceful_stop`` / ``summarize``: one more model call, without tools, asking for
        the final answer (or a summary) from what the run has; None for ``stop``."""
        instruction = FINAL_INSTRUCTIONS.get(crossing.action)
        if instruction is None:
            return None
        self._engine_says(prompt, instruction.format(name=crossing.name, detail=crossing.detail))
        _, record, response = await self._model_step(prompt, run.body, config, run.model, run.options, run.step,
                                                     no_tools=True)
        summarized, summary_cost = self._context.take_spend()  # def_context's summary calls (none without)
        run.usage = run.usage + response.usage + summarized
        run.cost = add_cost(add_cost(run.cost, response.cost_usd), summary_cost)
        self._status.usage, self._status.cost_usd = run.usage, run.cost
        await self._budget.spent(response.usage, response.cost_usd, response.budget)  # the tree's totals count it too
        text, _ = await self._moderated(response.text, run.step, record)
        self._events.step_finish(run.step, text, response.usage)
        prompt.record_assistant(text, [])
        run.step += 1
        return text

    def _engine_says(self, prompt: StatefulPrompt, text: str) -> None:
        """A user message of the engine's own (moderation does not check it)."""
        self._moderation.engine_wrote(text)
        prompt.record_user(text)

    async def _moderated(self, text: str, step: int, record: StepRecord) -> tuple[str, bool]:
        """The model's text after def_moderation of outputs, and whether it was blocked."""
        try:
            return await self._moderation.output(text, step, record.moderation), False
        except Blocked as blocked:
            return str(blocked), True
