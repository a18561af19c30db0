"""Model providers: the interface, the registry with the model resolver, and the built-ins."""

from .base import ModelConfigError, ModelProvider, ProviderRegistry, default_registry, resolve_model_spec
from .scripted import ScriptedProvider

__all__ = ["ModelConfigError", "ModelProvider", "ProviderRegistry", "ScriptedProvider", "default_registry", "resolve_model_spec"]
