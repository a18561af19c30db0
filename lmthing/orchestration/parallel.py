"""Parallel branches with an aggregation policy (``001`` defParallel, ``004`` ParallelPolicy).

Branches start together (each agent a child workflow, each tool an activity) and the
aggregation decides when the group is done and what it returns:

- ``all``: every branch runs to its end; at least ``min_success`` (default: all) must succeed;
- ``first`` (004's FIRST_COMPLETED): the first branch to *succeed* wins and the others are
  cancelled at once (real cancellation requests, which the history shows);
- ``majority``: the answer that more than half of the branches that answered gave;
- ``consensus``: every branch that answered gave the same answer (and at least ``min_success``);
- ``n_best`` (004's N_BEST): an ``evaluator(result) -> score`` function, or a ``judge`` agent,
  ranks the results; the best ``n`` are returned.

A group ``timeout`` is one durable timer: at its end the branches still running are
cancelled and count as failed. Answers are compared by ``key(result)`` (default: text
stripped and lower-cased; other values as JSON).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field
from pydantic_core import to_jsonable_python

from lmthing.prompt.stateful_prompt import PromptError

from .context import Context, DefinitionError, StepFailed, now
from .nodes import Node, as_node, call_check, pick_option

AGGREGATIONS = ("all", "first", "majority", "consensus", "n_best")
# 004's ParallelPolicy names, accepted as spelled there.
POLICY_NAMES = {"all": "all", "first_completed": "first", "first": "first", "n_best": "n_best",
                "majority": "majority", "consensus": "consensus"}


class ParallelResult(BaseModel):
    """What a parallel group did: ``value`` is what it returns to the next node."""

    aggregation: str
    value: Any = None
    winner: str | None = None
    best: list[str] = Field(default_factory=list)
    results: dict[str, Any] = Field(default_factory=dict)
    errors: dict[str, str] = Field(default_factory=dict)
    cancelled: list[str] = Field(default_factory=list)
    timed_out: list[str] = Field(default_factory=list)
    scores: dict[str, float] = Field(default_factory=dict)
    # majority / consensus: which branches gave each distinct answer.
    groups: list[list[str]] = Field(default_factory=list)


def normalize_answer(value: Any) -> str:
    if isinstance(value, str):
        return " ".join(value.strip().lower().split())
    return json.dumps(to_jsonable_python(value, fallback=repr), sort_keys=True)


@dataclass
class Parallel(Node):
    branches: dict[str, Node]
    aggregation: str = "all"
    min_success: int | None = None
    timeout: float | None = None
    n: int = 1
    evaluator: Callable[[Any], Any] | None = None
    judge: str | None = None
    key: Callable[[Any], Any] | None = None
    name: str = "parallel"
    kind = "parallel"
    _required: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        where = f"parallel {self.name!r}"
        if not self.branches:
            raise DefinitionError(f"{where}: give at least one branch")
        policy = POLICY_NAMES.get(str(self.aggregation).lower()) if isinstance(self.aggregation, str) else None
        if policy is None:
            raise DefinitionError(f"{where}: unknown aggregation {self.aggregation!r}; use one of {', '.join(AGGREGATIONS)}")
        self.aggregation = policy
        count = len(self.branches)
        default = count if policy in ("all", "consensus") else 1
        required = default if self.min_success is None else self.min_success
        if not isinstance(required, int) or isinstance(required, bool) or not 1 <= required <= count:
            raise DefinitionError(f"{where}: min_success must be an int from 1 to the number of branches ({count}), got {self.min_success!r}")
        self._required = required
        if self.timeout is not None and (not isinstance(self.timeout, (int, float)) or self.timeout <= 0):
            raise DefinitionError(f"{where}: timeout is in seconds and must be > 0, got {self.timeout!r}")
        if policy == "n_best":
            if (self.evaluator is None) == (self.judge is None):
                raise DefinitionError(f"{where}: n_best needs evaluator=fn(result) -> score or judge='<agent name>' (exactly one)")
            if not isinstance(self.n, int) or not 1 <= self.n <= count:
                raise DefinitionError(f"{where}: n must be an int from 1 to the number of branches ({count}), got {self.n!r}")
        elif self.evaluator is not None or self.judge is not None:
            raise DefinitionError(f"{where}: evaluator and judge only apply to aggregation='n_best'")

    def agents(self) -> set[str]:
        return set().union({self.judge} if self.judge else set(), *(b.agents() for b in self.branches.values()))

    def children(self) -> list[Node]:
        return list(self.branches.values())

    async def run(self, ctx: Context) -> Any:
        return (await self.execute(ctx)).value

    async def execute(self, ctx: Context) -> ParallelResult:
        out = ParallelResult(aggregation=self.aggregation)
        where = ctx.where or self.name
        tasks = {name: asyncio.create_task(self._branch(name, node, ctx, where)) for name, node in self.branches.items()}
        deadline = None if self.timeout is None else now() + self.timeout
        pending = set(tasks.values())
        try:
            while pending:
                remaining = None if deadline is None else max(0.0, deadline - now())
                done, pending = await asyncio.wait(pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                if not done:  # the group timer fired: stragglers are cancelled
                    out.timed_out = [n for n, t in tasks.items() if t in pending]
                    break
                for name, task in tasks.items():
                    if task in done:
                        ok, value = task.result()
                        if ok:
                            out.results[name] = value
                        else:
                            out.errors[name] = value
                if self.aggregation == "first" and out.results:
                    break
        finally:
            cancelled = [n for n, t in tasks.items() if not t.done()]
            for name in cancelled:
                tasks[name].cancel()
            if cancelled:
                await asyncio.gather(*(tasks[n] for n in cancelled), return_exceptions=True)
            for task in tasks.values():  # e.g. a prompt scan's ScanStop: seen once, raised by result()
                if task.done() and not task.cancelled():
                    task.exception()
        out.cancelled = cancelled
        for name in out.timed_out:
            out.errors[name] = f"timed out after {self.timeout:g} s (cancelled)"
        # Results in branch order, whatever order they finished in.
        out.results = {n: out.results[n] for n in self.branches if n in out.results}
        out.errors = {n: out.errors[n] for n in self.branches if n in out.errors}
        await self._aggregate(out, ctx, where)
        ctx.trace.add(kind="parallel", where=where, aggregation=self.aggregation, winner=out.winner, best=out.best or None,
                      succeeded=list(out.results), errors=out.errors or None, cancelled=out.cancelled or None,
                      timed_out=out.timed_out or None, scores=out.scores or None, groups=out.groups or None)
        return out

    async def _branch(self, name: str, node: Node, ctx: Context, where: str) -> tuple[bool, Any]:
        try:
            return True, await node.run(ctx.child(name, f"{where}.{name}"))
        except StepFailed as err:
            return False, err.reason

    def _fail(self, where: str, out: ParallelResult, why: str) -> StepFailed:
        errors = "; ".join(f"{n}: {e}" for n, e in out.errors.items())
        return StepFailed(where, f"{why}" + (f" (failed: {errors})" if errors else ""))

    async def _aggregate(self, out: ParallelResult, ctx: Context, where: str) -> None:
        ok = len(out.results)
        if self.aggregation == "first":
            if not out.results:
                raise self._fail(where, out, "no branch succeeded")
            out.winner = next(iter(out.results))
            out.value = out.results[out.winner]
            return
        if ok < self._required:
            raise self._fail(where, out, f"{ok} of {len(self.branches)} branches succeeded; min_success is {self._required}")
        if self.aggregation == "all":
            out.value = dict(out.results)
        elif self.aggregation in ("majority", "consensus"):
            await self._agree(out, where)
        else:
            await self._rank(out, ctx, where)

    async def _agree(self, out: ParallelResult, where: str) -> None:
        groups: dict[str, list[str]] = {}
        for name, value in out.results.items():
            keyed = await call_check(f"{where}: the key function", self.key, value) if self.key else value
            groups.setdefault(normalize_answer(keyed), []).append(name)
        out.groups = sorted(groups.values(), key=len, reverse=True)
        top = out.groups[0]
        answered = len(out.results)
        if self.aggregation == "consensus" and len(groups) > 1:
            raise StepFailed(where, "no consensus: " + "; ".join(f"{', '.join(g)} answered {str(out.results[g[0]])[:120]!r}" for g in out.groups))
        if self.aggregation == "majority" and not len(top) * 2 > answered:
            raise StepFailed(where, f"no majority: the largest group ({', '.join(top)}) is {len(top)} of {answered} answers")
        out.winner = top[0]
        out.value = out.results[top[0]]

    async def _rank(self, out: ParallelResult, ctx: Context, where: str) -> None:
        names = list(out.results)
        if self.evaluator is not None:
            for name in names:
                score = await call_check(f"{where}: the evaluator", self.evaluator, out.results[name])
                if not isinstance(score, (int, float)) or isinstance(score, bool):
                    raise PromptError(f"{where}: the evaluator must return a number, got {score!r} for branch {name!r}")
                out.scores[name] = float(score)
            ranked = sorted(names, key=lambda n: -out.scores[n])  # stable: ties keep branch order
        else:
            assert self.judge is not None
            candidates = [{"branch": n, "result": out.results[n]} for n in names]
            verdict = await ctx.run_agent(self.judge, {"task": _as_text(ctx.input), "candidates": candidates, "n": self.n},
                                          key=f"judge-{self.judge}")
            ranked = judge_ranking(verdict, names)
            if not ranked:
                raise StepFailed(where, f"judge '{self.judge}' answered {str(verdict)[:200]!r}, which ranks none of {names}")
            out.scores = {n: float(len(ranked) - i) for i, n in enumerate(ranked)}
        out.best = ranked[: self.n]
        out.winner = out.best[0]
        out.value = out.results[out.winner] if self.n == 1 else [out.results[n] for n in out.best]


def judge_ranking(verdict: Any, names: list[str]) -> list[str]:
    """Branch names a judge's answer ranks, best first: ``{"ranking": [...]}``, ``{"best": name}``,
    ``{"scores": {name: n}}``, a JSON list of names, or text that names one branch."""
    if isinstance(verdict, str):
        try:
            verdict = json.loads(verdict)
        except json.JSONDecodeError:
            one = pick_option(verdict, names)
            return [one] if one else []
    if isinstance(verdict, Mapping):
        if isinstance(verdict.get("scores"), Mapping):
            scores = {str(k): v for k, v in verdict["scores"].items() if str(k) in names}
            return sorted(scores, key=lambda n: -float(scores[n]))
        for key in ("ranking", "best", "winner", "choice"):
            if key in verdict:
                return judge_ranking(verdict[key], names)
        return []
    if isinstance(verdict, list):
        ranked = [pick_option(v, names) for v in verdict]
        return list(dict.fromkeys(r for r in ranked if r))
    return []


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(to_jsonable_python(value, fallback=repr), ensure_ascii=False)


def parallel(
    branches: Mapping[str, Any] | list[Any],
    *,
    aggregation: str = "all",
    policy: str | None = None,
    min_success: int | None = None,
    timeout: float | None = None,
    n: int = 1,
    evaluator: Callable[[Any], Any] | None = None,
    judge: str | None = None,
    key: Callable[[Any], Any] | None = None,
    name: str = "parallel",
) -> Parallel:
    """Branches (a ``{name: node}`` mapping, or a list named ``0``, ``1``...) run concurrently;
    ``policy`` is 004's spelling of ``aggregation`` (``ALL``, ``FIRST_COMPLETED``, ``N_BEST``)."""
    if isinstance(branches, Mapping):
        named = {str(k): v for k, v in branches.items()}
    elif isinstance(branches, list):
        named = {str(i): v for i, v in enumerate(branches)}
    else:
        raise DefinitionError(f"parallel {name!r}: branches must be a dict {{name: node}} or a list, got {type(branches).__name__}")
    nodes = {k: as_node(v, f"parallel {name!r} branch {k!r}") for k, v in named.items()}
    return Parallel(nodes, policy or aggregation, min_success, timeout, n, evaluator, judge, key, name)
