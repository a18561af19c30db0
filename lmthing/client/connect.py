"""The one place that builds a client (same data converter as the worker)."""

from __future__ import annotations

import os

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

DEFAULT_ADDRESS = "localhost:7233"


def data_converter() -> DataConverter:
    return pydantic_data_converter


async def connect(address: str | None = None, namespace: str | None = None) -> Client:
    """Connect to ``address``, else ``TEMPORAL_ADDRESS``, else localhost:7233."""
    return await Client.connect(
        address or os.environ.get("TEMPORAL_ADDRESS") or DEFAULT_ADDRESS,
        namespace=namespace or os.environ.get("TEMPORAL_NAMESPACE") or "default",
        data_converter=data_converter(),
    )
