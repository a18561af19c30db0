"""A provider's error as an activity's failure, the same for model calls, moderation and
embeddings: a permanent one (bad key, unknown model) is non-retryable, a transient one is
retried by Temporal after the provider's ``Retry-After`` when it sent one."""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError

from .providers.base import ModelCallError


def provider_failure(err: ModelCallError) -> ApplicationError:
    return ApplicationError(
        str(err), type=err.error_type, non_retryable=not err.retryable,
        next_retry_delay=timedelta(seconds=err.retry_after) if err.retry_after else None,
    )
