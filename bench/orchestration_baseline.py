"""The baseline of ``bench/orchestration.py``: hand-written Temporal workflows (temporalio
only, no lmthing orchestration code) that start the same child workflows as the lmthing
orchestrations: the prompt ``bench_worker`` (workflow type ``bench_worker``, args
``[{"task": ...}, RunConfig]``), 5 one after another or 10 at once with ``asyncio.gather``,
and return their texts.

These workflows are registered on the lmthing worker itself (``bench/orchestration.py`` adds
them with a worker plugin) and their children inherit its task queue, as lmthing's do, so both
sides run identical children on the same worker; what differs is the parent: lmthing's
orchestration layer against these few lines. Child ids have the same shape and length as lmthing's
(``<parent id>/bench_worker/<key>``) so that history bytes compare fairly.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow

# The children's second argument, as lmthing's orchestration passes it: the run's config.
# A plain model of the prompt workflow's input, not orchestration code.
from lmthing.workflows.config import RunConfig

WORKER = "bench_worker"


async def _child(key: str, task: str) -> str:
    result = await workflow.execute_child_workflow(
        WORKER,
        args=[{"task": task}, RunConfig()],
        id=f"{workflow.info().workflow_id}/{WORKER}/{key}",
        result_type=dict,
    )
    return result["text"]


@workflow.defn(name="bench-baseline-five-steps")
class BaselineFiveSteps:
    @workflow.run
    async def run(self) -> dict[str, Any]:
        results: dict[str, str] = {}
        for i in range(5):
            results[f"s{i}"] = await _child(f"workflow/s{i}.0/1/{WORKER}", f"step {i}")
        return {"output": results["s4"], "results": results}


@workflow.defn(name="bench-baseline-ten-branches")
class BaselineTenBranches:
    @workflow.run
    async def run(self) -> dict[str, Any]:
        names = [f"b{i}" for i in range(10)]
        texts = await asyncio.gather(
            *(_child(f"parallel/{name}/{WORKER}", f"branch {i}") for i, name in enumerate(names))
        )
        return {"value": dict(zip(names, texts))}
