"""Turning user errors into clear, non-retryable run failures.

By default a Python exception in workflow code fails the *workflow task*, which Temporal
retries forever. A broken prompt function is not going to fix itself, so every user error
ends the run with a message that names what went wrong and how to fix it.
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError, TemporalError
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError

from lmthing.prompt.stateful_prompt import PromptError

DETERMINISM_HELP = (
    "Prompt functions, effects and in-workflow tools run inside a Temporal workflow and must "
    "be deterministic: no wall clock (use workflow.now()), no random/uuid4 (use "
    "workflow.random() / workflow.uuid4()), no file, network or environment access, no "
    "threads. Move side effects into a module-level @tool function, which runs as an activity."
)


def cause_message(err: BaseException) -> str:
    """The innermost failure message, which is the one that says what actually went wrong."""
    inner: BaseException = err
    while isinstance(inner, TemporalError) and inner.cause is not None:
        inner = inner.cause
    return getattr(inner, "message", None) or str(inner)


def non_deterministic(where: str, err: RestrictedWorkflowAccessError) -> ApplicationError:
    accessed = getattr(err, "qualified_name", None) or str(err)
    return ApplicationError(
        f"{where} is not deterministic: it used {accessed}. {DETERMINISM_HELP}",
        type="NonDeterministicPrompt",
        non_retryable=True,
    )


def user_error(where: str, err: BaseException) -> ApplicationError:
    if isinstance(err, RestrictedWorkflowAccessError):
        return non_deterministic(where, err)
    if isinstance(err, PromptError):
        return ApplicationError(f"{where}: {err}", type="PromptError", non_retryable=True)
    return ApplicationError(
        f"{where} raised {type(err).__name__}: {err}",
        type="PromptFunctionError",
        non_retryable=True,
    )
