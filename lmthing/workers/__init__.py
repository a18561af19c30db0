"""Process edge: the worker factory and roles, sandbox passthrough, health, the embedded dev server."""

from lmthing.client.namespace import register_search_attributes

from .factory import PASSTHROUGH_MODULES, collect, create_worker, sandbox_runner
from .roles import DEFAULT_TASK_QUEUE, ROLES, Role, WorkerRoleError

__all__ = [
    "DEFAULT_TASK_QUEUE", "PASSTHROUGH_MODULES", "ROLES", "Role", "WorkerRoleError", "collect", "create_worker",
    "register_search_attributes", "sandbox_runner",
]
