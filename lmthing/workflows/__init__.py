"""Deterministic orchestration: the agent loop, sub-agents, continue-as-new.

Imports ``lmthing.prompt`` and activity *names* only; never provider SDKs or I/O.
"""

from .config import AgentFrame, Carry, RunConfig
from .definition import check_importable, is_prompt, prompt
from .prompt_workflow import PromptSpec, PromptWorkflow

__all__ = ["AgentFrame", "Carry", "PromptSpec", "PromptWorkflow", "RunConfig", "check_importable", "is_prompt", "prompt"]
