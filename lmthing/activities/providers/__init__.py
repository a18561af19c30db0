"""Model providers: the interface, the registry with the model resolver, and the built-ins
(``scripted``, ``openai``, ``anthropic``, custom OpenAI-compatible ones from the environment).

The provider modules import their SDK only when called, so importing this package is light."""

from .anthropic_provider import AnthropicProvider
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
from .openai_provider import OpenAIProvider
from .prices import PRICES, Price, estimate_cost, set_price
from .scripted import ScriptedProvider

__all__ = [
    "PRICES",
    "AnthropicProvider",
    "ModelCallError",
    "ModelConfigError",
    "ModelProvider",
    "NullSink",
    "OpenAIProvider",
    "Price",
    "ProviderRegistry",
    "ScriptedProvider",
    "StreamSink",
    "default_registry",
    "estimate_cost",
    "resolve_model_spec",
    "set_price",
]
