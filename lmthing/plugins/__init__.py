"""Built-in plugins (task list, task graph, functions) live here; each is built only on the
public ``def_*`` API. A plugin is any object or dict whose ``def_*`` callables take the
prompt as their first argument; pass it in ``plugins=[...]``."""

from .functions import def_function, def_function_agent, func, func_agent, function_plugin
from .task_graph import TaskInput, def_task_graph, run_task_graph, task_graph_plugin
from .task_list import Task, def_task_list, render_task_status, task_list_plugin

__all__ = [
    "Task", "TaskInput", "def_function", "def_function_agent", "def_task_graph", "def_task_list", "func", "func_agent",
    "function_plugin", "render_task_status", "run_task_graph", "task_graph_plugin", "task_list_plugin",
]
