"""Model providers: the interface, the registry with the model resolver, and the built-ins."""

from .base import (
    ModelCallError,
    ModelConfigError,
    ModelProvider,
    NullSink,
    ProviderRegistry,
    StreamSink,
    default_registry,
    resolve_model_spec,
)
from .scripted import ScriptedProvider

__all__ = [
    "ModelCallError", "ModelConfigError", "ModelProvider", "NullSink", "ProviderRegistry", "ScriptedProvider",
    "StreamSink", "default_registry", "resolve_model_spec",
]
