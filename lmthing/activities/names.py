"""Stable activity names. Renaming one breaks running workflows: add, never rename."""

from lmthing.prompt.tools import TOOL_ACTIVITY_PREFIX

MODEL_CALL = "lmthing.model_call"

__all__ = ["MODEL_CALL", "TOOL_ACTIVITY_PREFIX"]
