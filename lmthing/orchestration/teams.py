"""Agent teams (``000`` AgentTeam): declared agents working one task together.

Every member is an agent (a ``def_agent`` of the prompt, or a prompt by name) and every
member call is a child workflow. Members receive a :class:`TeamTask` (give it, or a model
with a subset of its fields, as the member's schema) and ``TeamTask.prompt()`` renders it for
the member's model. The patterns:

- ``sequential``: members in order, each sees what the earlier ones answered;
- ``parallel``: every member answers at once;
- ``hierarchical``: a lead agent gets the members as tools and delegates to them;
- ``vote``: every member picks one of ``options``; ballots, tally and winner (ties broken
  by ``tie_break``: the first option, no winner, or an agent that picks among the tied);
- ``consensus``: rounds until every member gives the same answer, or ``max_rounds``;
- ``debate``: ``rounds`` rounds in which each member sees the others' previous arguments,
  then a ``judge`` agent names the winner.

Ballots, rounds and the winner are in the :class:`TeamResult` and in the run's trace.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from .context import Context, DefinitionError, StepFailed
from .nodes import Node, _text, pick_option
from .parallel import normalize_answer

PATTERNS = ("sequential", "parallel", "hierarchical", "vote", "consensus", "debate")
TIE_BREAKS = ("first", "none")


class Contribution(BaseModel):
    member: str
    response: Any = None
    error: str | None = None


class TeamTask(BaseModel):
    """What a team member is asked: the task, and depending on the pattern the options to
    pick from, the round, and what other members said before."""

    task: str
    options: list[str] = Field(default_factory=list)
    round: int = 0
    previous: list[Contribution] = Field(default_factory=list)
    instructions: str = ""

    def prompt(self) -> str:
        """The task as one user message (what the patterns expect a member to be shown)."""
        parts = [self.task]
        if self.instructions:
            parts.append(self.instructions)
        if self.previous:
            said = "\n".join(f"- {c.member}: {c.response if c.error is None else '(no answer: ' + c.error + ')'}" for c in self.previous)
            parts.append(f"What the others said before (round {max(self.round - 1, 0)}):\n{said}")
        if self.options:
            parts.append("Answer with exactly one of: " + ", ".join(self.options))
        return "\n\n".join(parts)


class Ballot(BaseModel):
    member: str
    choice: str | None = None
    response: Any = None
    reason: str | None = None  # why the ballot counts for nothing (abstained, failed)


class TeamResult(BaseModel):
    """What a team pattern returns; ``answer`` is its one-value outcome."""

    team: str
    pattern: str
    answer: Any = None
    winner: str | None = None
    responses: list[Contribution] = Field(default_factory=list)
    ballots: list[Ballot] = Field(default_factory=list)
    tally: dict[str, int] = Field(default_factory=dict)
    tied: list[str] = Field(default_factory=list)
    rounds: list[list[Contribution]] = Field(default_factory=list)
    agreed: bool | None = None
    verdict: Any = None


@dataclass
class Team:
    """A named group of agents; its methods make nodes that run one pattern."""

    name: str
    members: list[str]
    lead: str | None = None
    judge: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise DefinitionError(f"def_team: the name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.members, (list, tuple)) or not self.members or not all(isinstance(m, str) and m for m in self.members):
            raise DefinitionError(f"team {self.name!r}: members must be a non-empty list of agent names, got {self.members!r}")
        if len(set(self.members)) != len(self.members):
            raise DefinitionError(f"team {self.name!r}: a member is listed twice in {self.members}")
        self.members = list(self.members)

    def sequential(self) -> TeamRun:
        return TeamRun(self, "sequential")

    def parallel(self) -> TeamRun:
        return TeamRun(self, "parallel")

    def hierarchical(self, lead: str | None = None) -> TeamRun:
        chosen = lead or self.lead
        if chosen is None:
            raise DefinitionError(f"team {self.name!r}: hierarchical needs a lead agent: def_team(..., lead='<agent>') or hierarchical(lead=...)")
        return TeamRun(self, "hierarchical", lead=chosen)

    def vote(self, options: list[str], tie_break: str = "first") -> TeamRun:
        if not isinstance(options, (list, tuple)) or len(options) < 2 or not all(isinstance(o, str) and o for o in options):
            raise DefinitionError(f"team {self.name!r}: vote needs options=[...] with at least two non-empty strings, got {options!r}")
        if len(set(options)) != len(options):
            raise DefinitionError(f"team {self.name!r}: vote options must be distinct, got {options}")
        if not isinstance(tie_break, str) or not tie_break:
            raise DefinitionError(f"team {self.name!r}: tie_break is 'first', 'none' or an agent's name, got {tie_break!r}")
        return TeamRun(self, "vote", options=list(options), tie_break=tie_break)

    def consensus(self, max_rounds: int = 3) -> TeamRun:
        _check_rounds(self.name, "max_rounds", max_rounds)
        return TeamRun(self, "consensus", rounds=max_rounds)

    def debate(self, rounds: int = 2, judge: str | None = None) -> TeamRun:
        _check_rounds(self.name, "rounds", rounds)
        chosen = judge or self.judge
        if chosen is None:
            raise DefinitionError(f"team {self.name!r}: debate needs a judge agent: def_team(..., judge='<agent>') or debate(judge=...)")
        if len(self.members) < 2:
            raise DefinitionError(f"team {self.name!r}: a debate needs at least two members")
        return TeamRun(self, "debate", rounds=rounds, judge=chosen)

    def pattern(self, name: str, **options: Any) -> TeamRun:
        if name not in PATTERNS:
            raise DefinitionError(f"team {self.name!r}: unknown pattern {name!r}; use one of {', '.join(PATTERNS)}")
        return getattr(self, name)(**options)


def _task_text(value: Any) -> str:
    """The task members are given: a text, a ``{"task": ...}`` mapping's task, or JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("task"), str):
        return value["task"]
    return _text(value)


def _check_rounds(team: str, what: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 20:
        raise DefinitionError(f"team {team!r}: {what} must be an int from 1 to 20, got {value!r}")


def lead_agent_name(team: str) -> str:
    """The hidden agent a hierarchical team runs: the lead, with the members as its tools."""
    return f"{team}__lead"


class TeamRun(Node):
    """One pattern of one team, as a node: the task is ``ctx.input``."""

    kind = "team"

    def __init__(self, team: Team, pattern: str, *, options: list[str] | None = None, tie_break: str = "first",
                 rounds: int = 1, judge: str | None = None, lead: str | None = None) -> None:
        self.team, self.pattern = team, pattern
        self.options, self.tie_break, self.rounds, self.judge, self.lead = options or [], tie_break, rounds, judge, lead

    def agents(self) -> set[str]:
        extra = {a for a in (self.judge, self.lead) if a}
        if self.tie_break not in TIE_BREAKS:
            extra.add(self.tie_break)
        return set(self.team.members) | extra

    async def run(self, ctx: Context) -> Any:
        return (await self.execute(ctx)).answer

    async def execute(self, ctx: Context) -> TeamResult:
        out = TeamResult(team=self.team.name, pattern=self.pattern)
        task = _task_text(ctx.input)
        await getattr(self, f"_{self.pattern}")(ctx, task, out)
        ctx.trace.add(kind="team", team=self.team.name, pattern=self.pattern, winner=out.winner, agreed=out.agreed,
                      tally=out.tally or None, tied=out.tied or None,
                      ballots=[b.model_dump(exclude_none=True) for b in out.ballots] or None,
                      rounds=[[c.model_dump(exclude_none=True) for c in r] for r in out.rounds] or None)
        return out

    async def _ask(self, ctx: Context, member: str, ask: TeamTask, key: str) -> Contribution:
        try:
            return Contribution(member=member, response=await ctx.run_agent(member, ask.model_dump(), key=key))
        except StepFailed as err:
            return Contribution(member=member, error=err.reason)

    async def _all(self, ctx: Context, asks: dict[str, TeamTask], key: str) -> list[Contribution]:
        return list(await asyncio.gather(*(self._ask(ctx, m, a, f"{key}-{m}") for m, a in asks.items())))

    def _need_answers(self, ctx: Context, said: list[Contribution]) -> None:
        if all(c.error is not None for c in said):
            raise StepFailed(ctx.where or f"team {self.team.name!r}", "every member failed: " + "; ".join(f"{c.member}: {c.error}" for c in said))

    async def _sequential(self, ctx: Context, task: str, out: TeamResult) -> None:
        for member in self.team.members:
            said = await self._ask(ctx, member, TeamTask(task=task, previous=list(out.responses), round=len(out.responses)), f"seq-{member}")
            out.responses.append(said)
        self._need_answers(ctx, out.responses)
        out.answer = next(c.response for c in reversed(out.responses) if c.error is None)

    async def _parallel(self, ctx: Context, task: str, out: TeamResult) -> None:
        out.responses = await self._all(ctx, {m: TeamTask(task=task) for m in self.team.members}, "par")
        self._need_answers(ctx, out.responses)
        out.answer = {c.member: c.response for c in out.responses if c.error is None}

    async def _hierarchical(self, ctx: Context, task: str, out: TeamResult) -> None:
        assert self.lead is not None
        ask = TeamTask(task=task, instructions=f"Delegate to your team members ({', '.join(self.team.members)}) with their tools, then answer.")
        said = await self._ask(ctx, lead_agent_name(self.team.name), ask, f"lead-{self.lead}")
        out.responses = [said.model_copy(update={"member": self.lead})]
        self._need_answers(ctx, out.responses)
        out.answer, out.winner = said.response, self.lead

    async def _vote(self, ctx: Context, task: str, out: TeamResult) -> None:
        said = await self._all(ctx, {m: TeamTask(task=task, options=self.options) for m in self.team.members}, "vote")
        for c in said:
            choice = None if c.error else pick_option(c.response, self.options)
            reason = c.error and f"failed: {c.error}" or (None if choice else "abstained: named none of the options")
            out.ballots.append(Ballot(member=c.member, choice=choice, response=c.response, reason=reason))
        out.tally = {o: sum(1 for b in out.ballots if b.choice == o) for o in self.options}
        top = max(out.tally.values())
        if top == 0:
            raise StepFailed(ctx.where or f"team {self.team.name!r}", "no valid ballot: " + "; ".join(f"{b.member}: {b.reason}" for b in out.ballots))
        leaders = [o for o in self.options if out.tally[o] == top]
        if len(leaders) > 1:
            out.tied = leaders
            out.winner = await self._break_tie(ctx, task, leaders)
        else:
            out.winner = leaders[0]
        out.answer = out.winner

    async def _break_tie(self, ctx: Context, task: str, leaders: list[str]) -> str | None:
        if self.tie_break == "first":
            return leaders[0]
        if self.tie_break == "none":
            return None
        answer = await ctx.run_agent(self.tie_break, TeamTask(task=task, options=leaders, instructions="The vote is tied; pick one.").model_dump(),
                                     key=f"tie-{self.tie_break}")
        picked = pick_option(answer, leaders)
        if picked is None:
            raise StepFailed(ctx.where or f"team {self.team.name!r}", f"tie-break agent '{self.tie_break}' answered {str(answer)[:200]!r}, which names none of {leaders}")
        return picked

    async def _consensus(self, ctx: Context, task: str, out: TeamResult) -> None:
        previous: list[Contribution] = []
        for r in range(self.rounds):
            said = await self._all(ctx, {m: TeamTask(task=task, round=r, previous=previous,
                                                     instructions="Agree on one answer." if r else "")
                                         for m in self.team.members}, f"round{r}")
            out.rounds.append(said)
            self._need_answers(ctx, said)
            answers = {normalize_answer(c.response) for c in said if c.error is None}
            if len(answers) == 1 and all(c.error is None for c in said):
                out.agreed, out.answer = True, said[0].response
                return
            previous = said
        out.agreed = False
        last = [c for c in out.rounds[-1] if c.error is None]
        counts: dict[str, list[Contribution]] = {}
        for c in last:
            counts.setdefault(normalize_answer(c.response), []).append(c)
        out.answer = max(counts.values(), key=len)[0].response  # the most common answer of the last round

    async def _debate(self, ctx: Context, task: str, out: TeamResult) -> None:
        assert self.judge is not None
        previous: list[Contribution] = []
        for r in range(self.rounds):
            asks = {m: TeamTask(task=task, round=r, previous=[c for c in previous if c.member != m],
                                instructions="Argue your position; answer the others' arguments." if r else "Argue your position.")
                    for m in self.team.members}
            said = await self._all(ctx, asks, f"round{r}")
            out.rounds.append(said)
            self._need_answers(ctx, said)
            previous = said
        verdict = await ctx.run_agent(
            self.judge,
            TeamTask(task=task, options=list(self.team.members), round=self.rounds, previous=previous,
                     instructions="Judge the debate: name the member whose argument wins.").model_dump(),
            key=f"judge-{self.judge}",
        )
        out.verdict = verdict
        out.winner = pick_option(verdict, list(self.team.members))
        if out.winner is None:
            raise StepFailed(ctx.where or f"team {self.team.name!r}", f"judge '{self.judge}' answered {str(verdict)[:200]!r}, which names none of {self.team.members}")
        out.answer = next((c.response for c in previous if c.member == out.winner), None)
