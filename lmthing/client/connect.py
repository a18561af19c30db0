"""The one place that builds a client (same data converter as the worker)."""

from __future__ import annotations

import dataclasses
import os

from typing import Any

from pydantic_core import to_json
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)

from lmthing.codec import codec_from_env

DEFAULT_ADDRESS = "localhost:7233"


class _CompactPydanticJSONConverter(PydanticJSONPlainPayloadConverter):
    """Pydantic JSON that leaves out model fields whose value is ``None``.

    Every model call carries the conversation, so a ``"tool_calls": null`` on each message
    is paid again at every step; leaving nulls out made histories ~20% smaller. Only model
    fields are dropped (all of ours default to ``None``); ``None`` values inside plain dicts,
    such as tool results, are kept.
    """

    def to_payload(self, value: Any) -> Payload | None:
        return Payload(metadata={"encoding": self.encoding.encode()}, data=to_json(value, exclude_none=True))


class PayloadConverter(CompositePayloadConverter):
    """The default converters, with JSON handled by pydantic (compactly)."""

    def __init__(self) -> None:
        compact = _CompactPydanticJSONConverter()
        super().__init__(
            *(
                compact if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


_DATA_CONVERTER = DataConverter(payload_converter_class=PayloadConverter)
_ENCRYPTED: dict[int, tuple[Any, DataConverter]] = {}


def data_converter() -> DataConverter:
    """The converter every lmthing client and worker uses: JSON on the wire, encrypted with
    AES-GCM when ``LMTHING_PAYLOAD_KEY`` / ``LMTHING_PAYLOAD_KEYS`` are set (:mod:`lmthing.codec`)."""
    codec = codec_from_env()
    if codec is None:
        return _DATA_CONVERTER
    if _ENCRYPTED.get(id(codec), (None,))[0] is not codec:
        _ENCRYPTED[id(codec)] = (codec, dataclasses.replace(_DATA_CONVERTER, payload_codec=codec))
    return _ENCRYPTED[id(codec)][1]


async def connect(address: str | None = None, namespace: str | None = None) -> Client:
    """Connect to ``address``, else ``TEMPORAL_ADDRESS``, else localhost:7233."""
    return await Client.connect(
        address or os.environ.get("TEMPORAL_ADDRESS") or DEFAULT_ADDRESS,
        namespace=namespace or os.environ.get("TEMPORAL_NAMESPACE") or "default",
        data_converter=data_converter(),
    )
