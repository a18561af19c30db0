"""The provider interface and the model resolver (``provider:model_id`` and aliases).

Resolution happens on the worker, in the model activity: aliases and keys come from the
worker's environment and never enter workflow history.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

from lmthing.prompt.types import ModelRequest, ModelResponse


class ModelConfigError(Exception):
    """A model string cannot be resolved; the message says what to set or change."""


class ModelCallError(Exception):
    """A provider call failed. ``retryable`` says whether another attempt can help (429,
    5xx, timeouts, dropped streams) or not (bad key, unknown model, invalid request);
    ``retry_after`` (seconds) is the provider's ``Retry-After``, used as the next retry delay.
    ``error_type`` names the failure class for users and metrics (e.g. "RateLimited")."""

    def __init__(self, message: str, *, retryable: bool, error_type: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.error_type = error_type
        self.retry_after = retry_after


class StreamSink(Protocol):
    """Where a provider sends text while the reply is still arriving; the model activity
    forwards it to the caller (batched) and heartbeats."""

    def text(self, delta: str) -> None: ...


class NullSink:
    """A sink that drops everything (no caller is listening)."""

    def text(self, delta: str) -> None:
        return None


@runtime_checkable
class ModelProvider(Protocol):
    """One model backend. ``complete`` makes one model step (one request, one reply),
    sending text deltas to ``sink`` as they arrive when it streams."""

    async def complete(self, model_id: str, request: ModelRequest, sink: StreamSink) -> ModelResponse: ...


def _alias_var(alias: str) -> str:
    return "LM_MODEL_" + alias.upper().replace("-", "_").replace(".", "_")


def resolve_model_spec(spec: str, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """``"provider:model_id"`` (split at the first colon) or an ``LM_MODEL_*`` alias chain."""
    env = os.environ if env is None else env
    seen: list[str] = []
    current = spec.strip()
    while ":" not in current:
        if not current:
            raise ModelConfigError("Model is empty: give 'provider:model_id' (e.g. 'openai:gpt-4o') or an alias.")
        var = _alias_var(current)
        if current in seen:
            chain = " -> ".join([*seen, current])
            raise ModelConfigError(f"Model alias loop: {chain}. Fix the LM_MODEL_* variables.")
        seen.append(current)
        if var not in env:
            via = f" (reached through {' -> '.join(seen)})" if len(seen) > 1 else ""
            raise ModelConfigError(
                f"Model {current!r} is not 'provider:model_id' and no alias is set{via}: "
                f"set {var}=provider:model_id on the worker."
            )
        current = env[var].strip()
    provider, model_id = current.split(":", 1)
    return provider, model_id


ProviderFactory = Callable[[], ModelProvider]


class ProviderRegistry:
    """Provider name -> provider; custom OpenAI-compatible providers slot in here too."""

    def __init__(self) -> None:
        self._providers: dict[str, ModelProvider] = {}

    def register(self, name: str, provider: ModelProvider) -> None:
        self._providers[name] = provider

    def names(self, env: Mapping[str, str] | None = None) -> list[str]:
        """Registered providers and the custom ones the environment defines
        (``{P}_API_TYPE``..., see custom.py)."""
        from .custom import custom_provider_names

        env = os.environ if env is None else env
        return sorted({*self._providers, *custom_provider_names(env, exclude=set(self._providers))})

    def resolve(self, spec: str, env: Mapping[str, str] | None = None) -> tuple[ModelProvider, str]:
        """The provider and model id for ``spec``. Custom providers are looked up in the
        environment now (on the worker, at call time), after the registered ones."""
        from .custom import find_custom_provider

        name, model_id = resolve_model_spec(spec, env)
        provider = self._providers.get(name)
        if provider is None:
            # os.environ itself (not a copy): the provider reads keys when it is called.
            provider = find_custom_provider(name, os.environ if env is None else env)
        if provider is None:
            prefix = name.upper().replace("-", "_").replace(".", "_")
            raise ModelConfigError(
                f"Unknown model provider {name!r} in {spec!r}. Available providers: {', '.join(self.names(env))}. "
                f"A custom OpenAI-compatible provider is defined on the worker with {prefix}_API_KEY, "
                f"{prefix}_API_BASE and {prefix}_API_TYPE=openai."
            )
        return provider, model_id


def default_registry() -> ProviderRegistry:
    """The built-in providers: ``scripted``, ``openai``, ``anthropic`` (SDKs are imported
    on first call), ``local`` (embeddings only), plus custom providers from the environment
    at resolve time."""
    from .anthropic_provider import AnthropicProvider
    from .local_embeddings import LocalEmbeddings
    from .openai_provider import OpenAIProvider
    from .scripted import ScriptedProvider

    registry = ProviderRegistry()
    registry.register("scripted", ScriptedProvider())
    registry.register("openai", OpenAIProvider())
    registry.register("anthropic", AnthropicProvider())
    registry.register("local", LocalEmbeddings())  # embeddings on the worker's CPU (docs/memory.md)
    return registry
