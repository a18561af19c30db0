"""The lmthing side of ``bench/orchestration.py``: one worker prompt and two standalone
orchestrations that run it as child workflows.

* ``bench_five_steps``: a ``def_workflow`` of 5 steps, one after another, each running the
  prompt ``bench_worker`` (a child workflow).
* ``bench_ten_branches``: a ``def_parallel`` of 10 branches, all started together, each
  running ``bench_worker``, aggregation ``all``.

``bench_worker`` answers at once with the scripted model (one model-call activity, no tools).
Kept in its own importable module (``bench.orchestration_app``) because the workflow
sandbox re-imports the module that defines a prompt or an orchestration.
"""

from __future__ import annotations

from pydantic import BaseModel

from lmthing import call_agent, def_parallel, def_workflow, prompt, step
from lmthing.testing import scripted_model, text

WORKER = "bench_worker"
STEPS = 5
BRANCHES = 10


class Task(BaseModel):
    task: str


@prompt(model=scripted_model("bench-worker", [text("done")]))
def bench_worker(p, args: Task):
    p.user(args.task)


five_steps = def_workflow(
    "bench_five_steps", [step(f"s{i}", agent=WORKER, args={"task": f"step {i}"}) for i in range(STEPS)]
)

ten_branches = def_parallel(
    "bench_ten_branches",
    {f"b{i}": call_agent(WORKER, {"task": f"branch {i}"}) for i in range(BRANCHES)},
    aggregation="all",
)
