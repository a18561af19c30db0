"""Process edge: the worker factory, sandbox passthrough, the embedded dev server."""

from .factory import DEFAULT_TASK_QUEUE, PASSTHROUGH_MODULES, collect, create_worker, register_search_attributes, sandbox_runner

__all__ = [
    "DEFAULT_TASK_QUEUE", "PASSTHROUGH_MODULES", "collect", "create_worker", "register_search_attributes", "sandbox_runner",
]
