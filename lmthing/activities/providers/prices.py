"""Estimated model prices, for the cost of a run.

These are **estimates**: list prices in USD per million tokens, copied by hand from the
providers' public price pages (openai.com/api/pricing, anthropic.com/pricing) and not
updated automatically. Batch discounts, priority tiers, long-context surcharges, cache
*writes* (Anthropic bills them above the input price) and regional endpoints are not
modelled. A model that is not in the table has an unknown cost (``None``), never zero.

To correct or add a price, edit ``PRICES`` below, or call :func:`set_price` in the worker
process (e.g. for a custom OpenAI-compatible provider: ``set_price("zai", "glm-4.6", ...)``).

Lookup: ``provider:model`` exactly, then the model id with a date or ``-latest`` suffix
removed (``gpt-4o-2024-08-06`` -> ``gpt-4o``, ``claude-sonnet-4-5-20250929`` ->
``claude-sonnet-4-5``), so a dated snapshot costs what its family costs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lmthing.prompt.types import Usage

# Standard-tier list prices as published in 2025-2026. Update here.
PRICES_AS_OF = "2026"


@dataclass(frozen=True)
class Price:
    """USD per million tokens. ``cached_input`` prices input tokens read from the prompt
    cache (OpenAI: cached input; Anthropic: cache reads); ``None`` = same as ``input``."""

    input: float
    output: float
    cached_input: float | None = None


PRICES: dict[str, Price] = {
    # OpenAI
    "openai:gpt-5.5": Price(5.00, 30.00, 0.50),
    "openai:gpt-5.4": Price(2.50, 15.00, 0.25),
    "openai:gpt-5.4-mini": Price(0.75, 4.50, 0.075),
    "openai:gpt-5.4-nano": Price(0.20, 1.25, 0.02),
    "openai:gpt-5.1": Price(1.25, 10.00, 0.125),
    "openai:gpt-5": Price(1.25, 10.00, 0.125),
    "openai:gpt-5-mini": Price(0.25, 2.00, 0.025),
    "openai:gpt-5-nano": Price(0.05, 0.40, 0.005),
    "openai:gpt-4.1": Price(2.00, 8.00, 0.50),
    "openai:gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "openai:gpt-4.1-nano": Price(0.10, 0.40, 0.025),
    "openai:gpt-4o": Price(2.50, 10.00, 1.25),
    "openai:gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "openai:o1": Price(15.00, 60.00, 7.50),
    "openai:o3": Price(2.00, 8.00, 0.50),
    "openai:o3-mini": Price(1.10, 4.40, 0.55),
    "openai:o4-mini": Price(1.10, 4.40, 0.275),
    "openai:gpt-4-turbo": Price(10.00, 30.00),
    "openai:gpt-3.5-turbo": Price(0.50, 1.50),
    # Anthropic (cache reads at 0.1x input unless listed otherwise)
    "anthropic:claude-fable-5-1": Price(10.00, 50.00, 0.25),
    "anthropic:claude-fable-5": Price(10.00, 50.00, 1.00),
    "anthropic:claude-mythos-5-1": Price(10.00, 50.00, 0.25),
    "anthropic:claude-mythos-5": Price(10.00, 50.00, 1.00),
    "anthropic:claude-opus-5": Price(5.00, 25.00, 0.50),
    "anthropic:claude-opus-4-8": Price(5.00, 25.00, 0.50),
    "anthropic:claude-opus-4-7": Price(5.00, 25.00, 0.50),
    "anthropic:claude-opus-4-6": Price(5.00, 25.00, 0.50),
    "anthropic:claude-opus-4-5": Price(5.00, 25.00, 0.50),
    "anthropic:claude-opus-4-1": Price(15.00, 75.00, 1.50),
    "anthropic:claude-opus-4-0": Price(15.00, 75.00, 1.50),
    "anthropic:claude-opus-4": Price(15.00, 75.00, 1.50),
    "anthropic:claude-sonnet-4-6": Price(3.00, 15.00, 0.30),
    "anthropic:claude-sonnet-4-5": Price(3.00, 15.00, 0.30),
    "anthropic:claude-sonnet-4-0": Price(3.00, 15.00, 0.30),
    "anthropic:claude-sonnet-4": Price(3.00, 15.00, 0.30),
    "anthropic:claude-3-7-sonnet": Price(3.00, 15.00, 0.30),
    "anthropic:claude-3-5-sonnet": Price(3.00, 15.00, 0.30),
    "anthropic:claude-haiku-4-5": Price(1.00, 5.00, 0.10),
    "anthropic:claude-3-5-haiku": Price(0.80, 4.00, 0.08),
    "anthropic:claude-3-haiku": Price(0.25, 1.25, 0.03),
    "anthropic:claude-3-opus": Price(15.00, 75.00, 1.50),
}

_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


def set_price(provider: str, model: str, input: float, output: float, cached_input: float | None = None) -> None:
    """Add or replace the price of ``provider:model`` (USD per million tokens)."""
    PRICES[f"{provider}:{model}"] = Price(input, output, cached_input)


def price_of(provider: str, model: str) -> Price | None:
    key = f"{provider}:{model}"
    if key in PRICES:
        return PRICES[key]
    base = _SNAPSHOT.sub("", model)
    return PRICES.get(f"{provider}:{base}") if base != model else None


def estimate_cost(provider: str, model: str, usage: Usage, served_model: str | None = None) -> float | None:
    """Estimated USD cost of one call, or ``None`` if the model's price is unknown.

    ``usage.input_tokens`` counts every prompt token, ``usage.cached_tokens`` the part of
    them read from the cache. ``served_model`` (the model id the provider says it used)
    is tried when the requested id has no price."""
    price = price_of(provider, model)
    if price is None and served_model:
        price = price_of(provider, served_model)
    if price is None:
        return None
    cached = min(usage.cached_tokens, usage.input_tokens)
    cached_price = price.input if price.cached_input is None else price.cached_input
    total = (usage.input_tokens - cached) * price.input + cached * cached_price + usage.output_tokens * price.output
    return round(total / 1_000_000, 10)
