"""Custom providers from the environment, exactly as lmthing defines them:

    ZAI_API_KEY=...                                   # the key
    ZAI_API_BASE=https://api.z.ai/api/coding/paas/v4  # the base URL of an OpenAI-compatible API
    ZAI_API_TYPE=openai                               # what the server speaks
    ZAI_API_NAME=zai                                  # optional; default: the prefix, lower-cased

makes ``zai:<model>`` usable. Every ``{P}_API_TYPE`` variable defines one provider;
``openai`` (any OpenAI-compatible server: Ollama, vLLM, LiteLLM, a gateway) is lmthing's
type, ``anthropic`` (an Anthropic-compatible server) is accepted too. They are read when
a model is resolved on the worker, so a worker sees the environment it runs with.
A built-in provider name (``openai``, ``anthropic``, ``scripted``) is never overridden.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .base import ModelConfigError, ModelProvider

SUPPORTED_TYPES = ("openai", "anthropic")
_SUFFIX = "_API_TYPE"


@dataclass(frozen=True)
class CustomProviderSpec:
    prefix: str  # "ZAI"
    name: str  # "zai"
    api_type: str  # "openai"

    @property
    def key_var(self) -> str:
        return f"{self.prefix}_API_KEY"

    @property
    def base_var(self) -> str:
        return f"{self.prefix}_API_BASE"

    @property
    def type_var(self) -> str:
        return f"{self.prefix}{_SUFFIX}"


def custom_provider_specs(env: Mapping[str, str]) -> dict[str, CustomProviderSpec]:
    """Provider name -> spec, for every ``{P}_API_TYPE`` in ``env`` (any type)."""
    specs: dict[str, CustomProviderSpec] = {}
    for var in sorted(env):
        if not var.endswith(_SUFFIX) or len(var) == len(_SUFFIX):
            continue
        prefix = var[: -len(_SUFFIX)]
        api_type = env[var].strip().lower()
        name = (env.get(f"{prefix}_API_NAME", "").strip() or prefix).lower()
        specs.setdefault(name, CustomProviderSpec(prefix=prefix, name=name, api_type=api_type))
    return specs


def custom_provider_names(env: Mapping[str, str], exclude: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Names of the usable (supported type) custom providers in ``env``."""
    return sorted(
        name for name, spec in custom_provider_specs(env).items() if spec.api_type in SUPPORTED_TYPES and name not in exclude
    )


def make_custom_provider(spec: CustomProviderSpec, env: Mapping[str, str] | None = None) -> ModelProvider:
    if spec.api_type == "openai":
        from .openai_provider import OpenAIProvider

        return OpenAIProvider(spec.name, spec.key_var, spec.base_var, compatible=True, env=env)
    if spec.api_type == "anthropic":
        from .anthropic_provider import AnthropicProvider

        return AnthropicProvider(spec.name, spec.key_var, spec.base_var, env=env, base_required=True)
    raise ModelConfigError(
        f"{spec.type_var}={spec.api_type!r} is not a supported API type for the custom provider {spec.name!r}: "
        f"use {' or '.join(SUPPORTED_TYPES)} (an OpenAI-compatible server is 'openai')."
    )


def find_custom_provider(name: str, env: Mapping[str, str]) -> ModelProvider | None:
    """The custom provider called ``name`` in ``env``, or ``None``."""
    spec = custom_provider_specs(env).get(name.lower())
    if spec is None:
        return None
    return make_custom_provider(spec, env)
