"""A shell command tool: off unless the worker enables it, and always behind an approval.

Two keys, held by two people. The worker's operator turns it on
(``LMTHING_SHELL_ENABLED=true`` or ``def_tool_settings(shell_enabled=True)``); without that,
the call is refused on the worker whatever the prompt says. And a person approves each
command before it runs: the tool carries ``approval="shell"``, a prompt that shows it to the
model declares the policy (``p.def_approval("shell", message="Run this command?")``), and
``p.def_tool(shell_run, approval=None)`` is refused. The command runs in the files root
when there is one (else the worker's working directory), with a clean environment (PATH,
HOME, LANG: none of the worker's secrets), a timeout
(``LMTHING_SHELL_TIMEOUT``) and its output cut at ``LMTHING_SHELL_MAX_OUTPUT`` bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

from lmthing.prompt.tools import RetryOptions, ToolContext, tool

from .registry import tagged
from .settings import ENV, FINAL_ERRORS, ToolLimitExceeded, ToolRefused, settings_of

SHELL_APPROVAL = "shell"


def clean_env(cwd: Path | None) -> dict[str, str]:
    """The command's environment: PATH, HOME and the locale, and nothing else. The worker's
    own environment holds its secrets (provider API keys, database URLs), which an approved
    ``env`` or ``echo $OPENAI_API_KEY`` must not print."""
    return {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "HOME": str(cwd or Path.home()),
            "LANG": os.environ.get("LANG", "C.UTF-8")}


@tagged("shell", "command", "dangerous")
@tool(approval=SHELL_APPROVAL, approval_required=True,
      retry=RetryOptions(maximum_attempts=1, non_retryable_error_types=FINAL_ERRORS))
async def shell_run(command: str, ctx: ToolContext) -> dict:
    """Run a shell command (after a person approves it) and return its exit code, stdout and stderr."""
    settings = await settings_of(ctx)
    if not settings.shell_enabled:
        raise ToolRefused(f"Refused: shell commands are off on this worker; its operator enables them with "
                          f"{ENV['shell_enabled']}=true (each command still needs an approval)")
    cwd = Path(settings.files_root).resolve() if settings.files_root else None
    proc = await asyncio.create_subprocess_shell(
        command, cwd=cwd, env=clean_env(cwd), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, start_new_session=True,  # its own process group: killed as a whole
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), settings.shell_timeout)
    except (asyncio.TimeoutError, asyncio.CancelledError) as stop:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        if isinstance(stop, asyncio.CancelledError):
            raise
        raise ToolLimitExceeded(f"The command ran longer than {settings.shell_timeout:g} s ({ENV['shell_timeout']}) "
                                "and was killed") from None
    limit = settings.shell_max_output
    return {"exit_code": proc.returncode, "stdout": out[:limit].decode(errors="replace"),
            "stderr": err[:limit].decode(errors="replace"), "truncated": len(out) > limit or len(err) > limit}
