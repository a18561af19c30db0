"""A workflow type the worker does not have fails at once, naming the ones it has.

Without it, ``temporal workflow start --type <a misspelt prompt>`` makes a run whose workflow
task fails with ``NotFoundError`` on every attempt, forever, with a traceback each time in the
worker's console. A worker that runs workflows registers this dynamic workflow: it ends such a
run with a non-retryable error that lists the workflow types of the worker's task queue and
the closest match.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

# The workflow types each workflows worker serves, by task queue (set by create_worker).
_KNOWN: dict[str, tuple[str, ...]] = {}


def set_known_types(task_queue: str, names: Sequence[str]) -> None:
    _KNOWN[task_queue] = tuple(sorted(names))


def unknown_type_message(wanted: str, known: Sequence[str], task_queue: str) -> str:
    close = difflib.get_close_matches(wanted, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return (
        f"No prompt or workflow named {wanted!r} on task queue {task_queue!r}.{hint} "
        f"Known: {', '.join(known) or 'none'}. Start the run with one of those types, or run a worker "
        f"whose --app defines {wanted!r} on this queue."
    )


@workflow.defn(dynamic=True, sandboxed=False)
class UnknownWorkflow:
    @workflow.run
    async def run(self, args: Sequence[RawValue]) -> None:
        info = workflow.info()
        raise ApplicationError(
            unknown_type_message(info.workflow_type, _KNOWN.get(info.task_queue, ()), info.task_queue),
            type="UnknownWorkflowType",
            non_retryable=True,
        )
