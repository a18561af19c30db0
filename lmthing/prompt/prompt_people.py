"""People in the loop and calls from the prompt function (approvals, questions, sub-agents,
tools and prompts called from workflow-side code, handoffs): a mixin of
:class:`~lmthing.prompt.stateful_prompt.StatefulPrompt`, whose attributes it uses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any



from .agents import AgentDef, CompositeAgentDef
from .definitions import Definition
from .humans import ApprovalPolicy, DecisionRecord, as_timedelta
from .tools import ToolDef
from .prompt_base import PromptError, _check_name




class PeopleAndCalls:
    """``def_approval``, ``ask_human``, ``call_agent`` ...; the attributes are StatefulPrompt's."""

    # ------------------------------------------------------------------ people in the loop
    def def_approval(
        self,
        name: str,
        message: str | None = None,
        options: tuple[str, ...] | list[str] = ("approve", "deny", "modify"),
        timeout: Any = None,
        default: str = "deny",
    ) -> ApprovalPolicy:
        """An approval policy; tools opt in with ``approval="<name>"``. When ``timeout``
        (seconds or timedelta) passes without a decision, ``default`` applies."""
        _check_name("def_approval", name)
        try:
            policy = ApprovalPolicy(name, message, tuple(options), as_timedelta(timeout), default)  # type: ignore[arg-type]
        except ValueError as err:
            raise PromptError(str(err)) from None
        self._approval_policies[name] = policy
        return policy

    def approval_policy(self, name: str) -> ApprovalPolicy:
        policy = self._approval_policies.get(name)
        if policy is None:
            known = ", ".join(self._approval_policies) or "(none)"
            raise PromptError(f"approval {name!r} is not defined; declare it with def_approval({name!r}, ...) (defined: {known})")
        return policy

    async def request_approval(
        self, approval: str, *, message: str | None = None, args: dict[str, Any] | None = None
    ) -> DecisionRecord:
        """Wait for a person to approve or deny, under policy ``approval``; returns the
        decision (``.action`` is "approve" or "deny"; a timeout applies the default)."""
        return await self._require_host("request_approval").request_approval(
            self.approval_policy(approval), tool=None, args=args, message=message
        )

    async def ask_human(
        self,
        question: str,
        options: list[str] | None = None,
        timeout: Any = None,
        default: str | None = None,
        key: str | None = None,
    ) -> str:
        """Ask a person and wait for the answer (``default`` after ``timeout``). Asking the
        same question again (same ``key``, default the question) returns the first answer,
        so a prompt function that re-runs every step asks only once."""
        return await self._require_host("ask_human").ask(
            question, options=options, timeout=as_timedelta(timeout), default=default, key=key or question
        )

    def def_interaction(
        self,
        name: str = "ask_human",
        description: str = "Ask the person you are working for a question and wait for their answer.",
        timeout: Any = None,
        default: str | None = None,
    ) -> Definition:
        """A tool through which the model asks a person and gets the answer back."""
        from .humans import AskArgs

        async def ask(args: AskArgs, info: Any) -> dict[str, str]:
            answer = await self.ask_human(
                args.question, options=args.options, timeout=timeout, default=default, key=f"tool:{info.tool_call_id}"
            )
            return {"answer": answer}

        return self.def_tool(name, description, AskArgs, ask)

    async def call_agent(self, name: str, args: Any, *, key: str) -> dict[str, Any]:
        """Run sub-agent ``name`` (declared with def_agent; "team.member" for a composite's
        member) from workflow-side code, as a child workflow; ``key`` makes its id unique in
        the run. Returns what the model would get: ``{"response", "validationError"?}`` or
        ``{"error"}``."""
        self._check_running("call_agent", self._agent_runner)
        owner, _, member = name.partition(".")
        found = self._agents.get(owner)
        composite = None
        if isinstance(found, CompositeAgentDef):
            composite, found = owner, found.member(member) if member else None
        if not isinstance(found, AgentDef):
            known = ", ".join(self._agents) or "(none)"
            raise PromptError(f"call_agent: no agent {name!r} is defined (defined: {known}); declare it with def_agent")
        parsed, problem = found.validate_args(args)
        if problem is not None:
            return {"error": problem}
        return await self._agent_runner(found, parsed, key, composite)  # type: ignore[misc]

    async def call_prompt(self, name: str, args: Any = None, *, key: str) -> dict[str, Any]:
        """Run another prompt of the worker (by its workflow type name) as a child workflow
        with its own model and definition; ``key`` makes its id unique in the run. Returns
        ``{"response", "structured"?, "validationError"?}`` or ``{"error"}``."""
        self._check_running("call_prompt", self._prompt_runner)
        return await self._prompt_runner(name, args, key)  # type: ignore[misc]

    async def call_tool(self, tool: ToolDef, args: Any, *, call_id: str, step: int, key: str) -> tuple[Any, bool]:
        """Run ``tool`` from workflow-side code exactly as a model's call would run (validation,
        approval, callbacks, response schema; an ``@tool`` function as an activity whose
        idempotency key ends in ``key``). Returns ``(result, is_error)``."""
        self._check_running("call_tool", self._tool_runner)
        return await self._tool_runner(tool, args, call_id, step, key)  # type: ignore[misc]

    def request_handoff(self, agent: str, args: Any) -> bool:
        """Hand the conversation to def_agent ``agent`` after this step's tool calls (the
        ``transfer_to_<agent>`` tools of ``def_handoff`` call this). The first request of a
        step wins; returns False for a later one."""
        if self._handoff is not None:
            return False
        if not isinstance(self._agents.get(agent), AgentDef):
            raise PromptError(f"handoff to {agent!r}: no such def_agent is defined; declare it with def_agent")
        self._handoff = (agent, args)
        return True

    def take_handoff(self) -> tuple[str, Any] | None:
        handoff, self._handoff = self._handoff, None
        return handoff

    def switch_definition(
        self, *, base_system: str | None, response_schema: Any, plugins: Iterable[Any], agent_system: str | None = None,
        response_instruction: str | None = None,
    ) -> None:
        """Go on with another agent's definition (a handoff): the conversation and state stay;
        definitions, effects and their memory come from the new function from its next run."""
        self._base_system = base_system
        self._agent_system = agent_system
        self._response_schema = response_schema
        self._response_instruction = response_instruction
        self._plugins = list(plugins)
        self._effect_memory = []

