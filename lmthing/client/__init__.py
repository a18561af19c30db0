"""Caller edge: connect, start, follow and query prompt runs."""

from .connect import connect, data_converter
from .handle import PromptHandle, TextDelta, get_handle, run_prompt, start_prompt

__all__ = ["PromptHandle", "TextDelta", "connect", "data_converter", "get_handle", "run_prompt", "start_prompt"]
