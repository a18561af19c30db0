"""The moderation activity (``lmthing.moderate``): texts to a provider's moderation model
(``def_moderation(model="openai:omni-moderation-latest")``, docs/resilience.md).

It runs with the model calls (the same provider settings, keys from the worker's
environment, so none enter history), and its failures are classified like theirs: a bad key
or an unknown model fails at once, a rate limit or a server error is retried by Temporal.
"""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.exceptions import ApplicationError

from lmthing.resilience.moderation import ModerationCall, ModerationScores

from .failures import provider_failure
from .heartbeats import heartbeat_forever
from .names import MODERATE
from .providers.base import ModelCallError, ModelConfigError, ProviderRegistry


class ModerationActivities:
    """Holds the worker's provider registry; ``moderate`` is the activity."""

    def __init__(self, registry: ProviderRegistry) -> None:
        self.registry = registry

    @activity.defn(name=MODERATE)
    async def moderate(self, call: ModerationCall) -> list[ModerationScores]:
        heartbeats = asyncio.create_task(heartbeat_forever())  # a dead worker is noticed in seconds
        try:
            provider, model_id = self.registry.resolve(call.model)
            moderate = getattr(provider, "moderate", None)
            if moderate is None:
                raise ModelConfigError(
                    f"The provider of {call.model!r} has no moderation endpoint; use an OpenAI moderation model "
                    "('openai:omni-moderation-latest') or def_moderation(check=...)")
            return await moderate(model_id, call.texts)
        except ModelConfigError as err:
            raise ApplicationError(str(err), type="ModelConfigError", non_retryable=True) from None
        except ModelCallError as err:
            raise provider_failure(err) from None
        finally:
            heartbeats.cancel()
