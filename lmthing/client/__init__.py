"""Caller edge: connect, start, follow and query prompt runs."""

from .connect import ConnectionConfigError, TemporalUnreachable, connect, connect_options, data_converter
from .handle import PromptHandle, TextDelta, get_handle, run_prompt, start_prompt
from .orchestrations import OrchestrationHandle, run_orchestration, start_orchestration

__all__ = [
    "ConnectionConfigError", "OrchestrationHandle", "PromptHandle", "TextDelta", "connect", "connect_options", "data_converter", "get_handle",
    "run_orchestration", "run_prompt", "start_orchestration", "start_prompt", "TemporalUnreachable",
]
