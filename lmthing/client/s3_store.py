"""``LMTHING_PAYLOAD_STORE=s3://bucket``: the SDK's ``S3StorageDriver`` over aioboto3.

The aioboto3 client is an async context that belongs to one event loop, while the data
converter is built once per process (synchronously): so the client is opened on first use,
one per running loop, and kept for the life of the process. The driver keeps the SDK
driver's name and type, so references are readable by any Temporal SDK's S3 driver.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aioboto3
from temporalio.api.common.v1 import Payload
from temporalio.contrib.aws.s3driver import S3StorageDriver
from temporalio.contrib.aws.s3driver.aioboto3 import new_aioboto3_client
from temporalio.converter import StorageDriver, StorageDriverClaim, StorageDriverRetrieveContext, StorageDriverStoreContext

DRIVER_NAME = "aws.s3driver"


class S3Driver(StorageDriver):
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self._session = aioboto3.Session()
        self._per_loop: dict[asyncio.AbstractEventLoop, tuple[Any, S3StorageDriver]] = {}

    def name(self) -> str:
        return DRIVER_NAME

    def type(self) -> str:
        return DRIVER_NAME

    async def _driver(self) -> S3StorageDriver:
        loop = asyncio.get_running_loop()
        found = self._per_loop.get(loop)
        if found is None:
            context = self._session.client("s3")
            client = await context.__aenter__()  # closed with the process (see the module doc)
            found = self._per_loop[loop] = (context, S3StorageDriver(client=new_aioboto3_client(client), bucket=self.bucket))
        return found[1]

    async def store(self, context: StorageDriverStoreContext, payloads: Sequence[Payload]) -> list[StorageDriverClaim]:
        return await (await self._driver()).store(context, payloads)

    async def retrieve(self, context: StorageDriverRetrieveContext, claims: Sequence[StorageDriverClaim]) -> list[Payload]:
        return await (await self._driver()).retrieve(context, claims)
