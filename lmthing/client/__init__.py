"""Caller edge: connect, start, follow and query prompt runs."""

from .connect import ConnectionConfigError, connect, connect_options, data_converter
from .handle import PromptHandle, TextDelta, get_handle, run_prompt, start_prompt

__all__ = [
    "ConnectionConfigError", "PromptHandle", "TextDelta", "connect", "connect_options", "data_converter", "get_handle",
    "run_prompt", "start_prompt",
]
