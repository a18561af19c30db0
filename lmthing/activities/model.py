"""The model-call activity (``lmthing.model_call``): one model step through a provider."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from lmthing.prompt.types import ModelRequest, ModelResponse

from .names import MODEL_CALL
from .providers.base import ModelCallError, ModelConfigError, NullSink, ProviderRegistry


class ModelActivities:
    """Holds the worker's provider registry; ``model_call`` is the activity."""

    def __init__(self, registry: ProviderRegistry) -> None:
        self.registry = registry

    @activity.defn(name=MODEL_CALL)
    async def model_call(self, request: ModelRequest) -> ModelResponse:
        try:
            provider, model_id = self.registry.resolve(request.model)
            return await provider.complete(model_id, request, NullSink())
        except ModelConfigError as err:
            # Configuration does not fix itself between attempts: fail fast.
            raise ApplicationError(str(err), type="ModelConfigError", non_retryable=True) from None
        except ModelCallError as err:
            raise ApplicationError(
                str(err),
                type=err.error_type,
                non_retryable=not err.retryable,
                next_retry_delay=timedelta(seconds=err.retry_after) if err.retry_after else None,
            ) from None
