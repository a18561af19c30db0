"""The prompts of ``bench/resilience_checks.py``: one agent in four variants (no resilience
definitions, guard + validator, token budget, both), and a tree (a root that calls one
sub-agent) with and without a token budget. Every variant runs the same ``@tool`` activity
tool (``lookup``, as in ``bench/overhead_app.py``) driven by the scripted model: steps
1..N-1 each call the tool once, step N answers.

Kept in its own importable module (``bench.resilience_checks_app``) because the workflow
sandbox re-imports the module that defines a prompt.
"""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import workflow

from lmthing import prompt
from lmthing.testing import scripted_model, text, tool_call

from bench.overhead_app import ANSWER, SYSTEM, USER, lookup

# Large enough never to stop a run (the scripted model spends a few hundred tokens a step).
TOKENS_MAX = 1e12


class Task(BaseModel):
    task: str


class Facts(BaseModel):
    """The validator's schema: what ``lookup`` returns."""

    n: int
    square: int
    parity: str
    label: str


def allowed(check) -> bool:
    """The guard's condition: a flag of the run's state, which holds."""
    return bool(check.state["allowed"]) and check.args.n >= 0


def plausible(facts: Facts) -> bool | str:
    """The validator's check (after the schema): the square is the square."""
    return facts.square == facts.n * facts.n or f"{facts.square} is not {facts.n} squared"


def _agent(p, guards: bool, budget: bool) -> None:
    p.def_system("role", SYSTEM)
    if budget:
        p.def_constraint("tokens", "tokens", max=TOKENS_MAX)
    if guards:
        p.def_state("allowed", True)
        p.def_guard("allowed", allowed, on_fail="skip", message="lookups are off", tools=["lookup"])
        p.def_validator("facts", schema=Facts, check=plausible)
        p.def_tool(lookup, validator="facts")
    else:
        p.def_tool(lookup)
    p.user(USER)


# Each prompt is a module-level function under its own name (the sandbox re-imports it).
@prompt(max_steps=200)
def rc_baseline(p):
    _agent(p, guards=False, budget=False)


@prompt(max_steps=200)
def rc_guards(p):
    _agent(p, guards=True, budget=False)


@prompt(max_steps=200)
def rc_budget(p):
    _agent(p, guards=False, budget=True)


@prompt(max_steps=200)
def rc_both(p):
    _agent(p, guards=True, budget=True)


def _sub(args: Task, child) -> None:
    child.def_tool(lookup)
    child.user(args.task)


def _tree(p, budget: bool) -> None:
    p.def_system("role", "You delegate the work to the sub-agent 'worker', then answer.")
    if budget:
        p.def_constraint("tokens", "tokens", max=TOKENS_MAX)
    p.def_agent("worker", "Does the lookups", Task, _sub, max_steps=200)
    p.user("Have the worker look up the numbers, then summarise.")


@prompt(max_steps=10)
def rc_tree_baseline(p):
    _tree(p, budget=False)


@prompt(max_steps=10)
def rc_tree_budget(p):
    _tree(p, budget=True)


def _lookups(steps: int) -> list:
    # One explicit step per list item: consecutive tool_call items would otherwise be grouped
    # into a single step with several parallel calls.
    return [[tool_call("lookup", {"n": i})] for i in range(steps - 1)] + [text(ANSWER)]


def script_for(steps: int) -> str:
    """The scripted model of a one-agent run of ``steps`` model steps (registered once per process)."""
    return scripted_model(f"bench-rc-{steps}", _lookups(steps))


def tree_script_for(steps: int) -> str:
    """The tree's: the root calls the worker (1 step) and answers (1 step); the worker runs
    ``steps`` model steps. So ``steps + 2`` model steps in the tree."""
    return scripted_model(f"bench-rc-tree-{steps}", [[tool_call("worker", {"task": USER})], text(ANSWER)],
                          agents={"worker": _lookups(steps)})


# ------------------------------------------------------------------- in-sandbox micro
# The same checks as bench/resilience_checks.py's micro part, called in a loop inside a
# workflow (so inside the sandbox, with workflow.now()/info() available): the real
# RunBudget.spent of a root, too. The clock comes passed through (bench/thread_clock.py); the
# loops run restricted, like the checks do in a run.
@workflow.defn(name="bench_rc_micro")
class RcMicro:
    @workflow.run
    async def run(self, number: int) -> dict[str, float]:
        from lmthing.prompt.types import Usage
        from lmthing.resilience.book import GuardDef, ValidatorDef
        from lmthing.resilience.budget import BudgetLedger, Constraint, Spend
        from lmthing.resilience.checks import GuardCheck, guard_holds, validate
        from lmthing.workflows.budget_host import RunBudget
        from lmthing.workflows.resilience_host import RunResilience

        with workflow.unsafe.imports_passed_through():
            from bench.thread_clock import clock
        guard = GuardDef(name="allowed", condition=allowed, on_fail="skip", message="lookups are off", tools=("lookup",))
        validator = ValidatorDef(name="facts", schema=Facts, check=plausible)
        args, state = lookup.args_model(n=7), {"allowed": True}
        check = GuardCheck(state=state, args=args, tool="lookup", step=3)
        output = {"n": 7, "square": 49, "parity": "odd", "label": "item-7"}
        res = RunResilience()
        res.book.guards["allowed"] = guard
        res.book.validators["facts"] = validator
        tokens = Constraint(name="tokens", type="tokens", max=TOKENS_MAX)
        ledger = BudgetLedger([tokens])
        budget = RunBudget(None, None, None, note=lambda n: None, step=lambda: 0,  # type: ignore[arg-type]
                           constraints=lambda: {"tokens": tokens})
        usage = Usage(input_tokens=412, output_tokens=9)

        sync_cases = {
            "BudgetLedger.spend (tokens constraint)": lambda: ledger.spend(Spend(run_id="bench-root", tokens=421)),
            "workflow.now()": workflow.now,
            "workflow.info()": workflow.info,
        }
        async_cases = {
            "guard_holds (one guard, condition on state)": lambda: guard_holds(guard, check),
            "RunResilience.guard (lookup + GuardCheck + guard_holds)": lambda: res.guard("lookup", (), state, args, 3, None),
            "validate (pydantic schema + check)": lambda: validate(validator, output),
            "RunResilience.validate_output": lambda: res.validate_output("facts", output),
            "RunBudget.spent of a root (the real one)": lambda: budget.spent(usage, None),
        }
        out = {}
        for name, fn in sync_cases.items():
            fn()
            t0 = clock()
            for _ in range(number):
                fn()
            out[name] = (clock() - t0) / number / 1e3
        for name, make in async_cases.items():
            await make()
            t0 = clock()
            for _ in range(number):
                await make()
            out[name] = (clock() - t0) / number / 1e3
        return out
