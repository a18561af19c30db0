"""The model-call activity (``lmthing.model_call``): one model step through a provider."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from lmthing.prompt.types import ModelRequest, ModelResponse

from .names import MODEL_CALL
from .providers.base import ModelConfigError, ProviderRegistry


class ModelActivities:
    """Holds the worker's provider registry; ``model_call`` is the activity."""

    def __init__(self, registry: ProviderRegistry) -> None:
        self.registry = registry

    @activity.defn(name=MODEL_CALL)
    async def model_call(self, request: ModelRequest) -> ModelResponse:
        try:
            provider, model_id = self.registry.resolve(request.model)
            return await provider.complete(model_id, request)
        except ModelConfigError as err:
            # Configuration does not fix itself between attempts: fail fast.
            raise ApplicationError(str(err), type="ModelConfigError", non_retryable=True) from None
