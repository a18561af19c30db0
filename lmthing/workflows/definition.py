"""``@prompt``: turn a prompt function into a Temporal workflow type of the same name.

The decorator returns a generated workflow class that stands in the module under the
function's own name. The workflow sandbox re-imports a workflow class with
``from <module> import <name>``, so that binding is what lets the prompt function run
*inside* the sandbox, where determinism is enforced, while ``lmthing`` itself is passed
through.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any, get_type_hints

from pydantic import BaseModel
from temporalio import workflow

from lmthing.orchestration import registry
from lmthing.prompt.types import RunResult

from .config import Carry, RunConfig
from .prompt_workflow import DEFAULT_MAX_STEPS, RUN_PARAMETERS, PromptSpec, PromptWorkflow


def prompt(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    model: str | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    system: str | None = None,
    plugins: list[Any] | None = None,
    stop_when: Callable[..., bool] | None = None,
    options: dict[str, Any] | None = None,
    description: str | None = None,
    capabilities: list[str] | None = None,
    retry: str | None = None,
    fallback: str | None = None,
) -> Any:
    """Declare a prompt function ``fn(p)`` or ``fn(p, args)``; its workflow type is
    ``name`` (default: the function's name). ``description`` (default: the docstring's first
    line) and ``capabilities`` are what the agent registry shows and selects by
    (``lmthing agents list``, ``p.select_agents``). ``retry`` and ``fallback`` name the
    prompt's ``def_retry`` policy and ``def_fallback`` cascade for its model calls."""

    _check_prompt_options(name, model, max_steps, system, plugins, stop_when, options)
    for option, value in (("retry", retry), ("fallback", fallback)):
        if value is not None and (not isinstance(value, str) or not value):
            raise TypeError(f"@prompt: {option}= is the name of a def_{option}(...) in the prompt function; got {value!r}")

    def wrap(f: Callable[..., Any]) -> type[PromptWorkflow]:
        if not inspect.isfunction(f):
            raise TypeError(f"@prompt decorates a function fn(p) or fn(p, args), got {f!r}")
        if f.__name__ == "<lambda>" and name is None:
            raise TypeError("@prompt on a lambda: its workflow type would be '<lambda>'; use a def, or give name=...")
        params = list(inspect.signature(f).parameters.values())
        if not params or len(params) > 2:
            raise TypeError(f"@prompt {f.__qualname__}: the function takes (p) or (p, args)")
        args_model = None
        if len(params) == 2:
            hint = get_type_hints(f).get(params[1].name)
            if isinstance(hint, type) and issubclass(hint, BaseModel):
                args_model = hint
        spec = PromptSpec(
            name=name or f.__name__,
            fn=f,
            takes_args=len(params) == 2,
            args_model=args_model,
            model=model,
            max_steps=max_steps,
            system=system,
            plugins=list(plugins or []),
            stop_when=stop_when,
            options=dict(options or {}),
            description=description if description is not None else (inspect.getdoc(f) or "").split("\n", 1)[0],
            capabilities=registry.check_capabilities(f"@prompt {f.__qualname__}", capabilities),
            retry=retry,
            fallback=fallback,
        )
        registry.register(registry.AgentEntry(
            name=spec.name, kind="prompt", description=spec.description, capabilities=spec.capabilities,
            input_schema=args_model.model_json_schema() if args_model is not None else None, module=f.__module__,
        ))
        return _workflow_class(spec, f)

    return wrap(fn) if fn is not None else wrap


def _check_prompt_options(
    name: Any, model: Any, max_steps: Any, system: Any, plugins: Any, stop_when: Any, options: Any
) -> None:
    """What @prompt(...) was given, checked where it was written: each of these would
    otherwise fail (or be ignored) only when a run starts on a worker."""
    where = f"@prompt({name!r})" if name is not None else "@prompt"
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise TypeError(f"@prompt: name= is the workflow type, a non-empty string; got {name!r}")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise TypeError(f"{where}: model= is a string 'provider:model_id' (e.g. 'openai:gpt-4o') or an alias; got {model!r}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise TypeError(f"{where}: max_steps= is a positive int (model calls a run may make); got {max_steps!r}")
    if system is not None and not isinstance(system, str):
        raise TypeError(f"{where}: system= is text; got {type(system).__name__} {system!r}")
    if plugins is not None and not isinstance(plugins, (list, tuple)):
        raise TypeError(f"{where}: plugins= is a list, e.g. plugins=[task_list_plugin]; got {plugins!r}")
    if stop_when is not None and not callable(stop_when):
        raise TypeError(f"{where}: stop_when= is a function of the steps so far (e.g. step_count_is(3)); got {stop_when!r}")
    if options is not None:
        if not isinstance(options, dict):
            raise TypeError(f"{where}: options= is a dict of model options, e.g. {{'temperature': 0}}; got {options!r}")
        from lmthing.prompt.types import ModelOptions

        unknown = sorted(set(options) - set(ModelOptions.model_fields))
        if unknown:
            raise TypeError(
                f"{where}: unknown model option(s) {', '.join(unknown)}; the options are "
                f"{', '.join(ModelOptions.model_fields)}"
            )


def _workflow_class(spec: PromptSpec, f: Callable[..., Any]) -> type[PromptWorkflow]:
    async def run(
        self: PromptWorkflow,
        args: Any = None,
        config: RunConfig | None = None,
        carry: Carry | None = None,
    ) -> RunResult:
        return await self._execute(args, config, carry)

    # The SDK accepts a run method only if it looks defined on the class itself.
    run.__qualname__ = f"{f.__name__}.run"
    run.__module__ = f.__module__
    # @workflow.init and @workflow.run must have identical parameters, annotations included.
    run.__annotations__ = {**RUN_PARAMETERS, "return": RunResult}
    cls = type(f.__name__, (PromptWorkflow,), {"spec": spec, "run": workflow.run(run), "__doc__": f.__doc__})
    cls.__module__ = f.__module__
    cls.__qualname__ = f.__qualname__
    return workflow.defn(name=spec.name)(cls)


def is_prompt(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, PromptWorkflow) and obj is not PromptWorkflow


def check_importable(cls: type[PromptWorkflow]) -> None:
    """Fail early, with the fix, if the sandbox could not re-import this prompt."""
    module = sys.modules.get(cls.__module__)
    if module is None or getattr(module, cls.__name__, None) is not cls or "<locals>" in cls.__qualname__:
        raise TypeError(
            f"Prompt '{cls.spec.name}' ({cls.__module__}.{cls.__qualname__}) must be defined at module "
            "level under its own name, so the workflow sandbox can re-import it."
        )
    if cls.__module__ == "__main__":
        raise TypeError(
            f"Prompt '{cls.spec.name}' is defined in __main__; the workflow sandbox re-imports prompt "
            "modules by name. Put it in a module (or use `lmthing run file.py`, which imports the file as one)."
        )
