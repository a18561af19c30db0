"""Payloads of any size: Temporal's External Storage, configured from the environment.

Temporal keeps every payload in history and refuses one over 2 MB. With
``LMTHING_PAYLOAD_STORE`` set, payloads over ``LMTHING_PAYLOAD_STORE_THRESHOLD`` bytes
(default 256 KiB) are written to a store and history holds a reference to them (the SDK's
``ExternalStorage``, experimental in temporalio 1.35). After the encryption codec, so a
stored payload is as encrypted as one in history. Every client and worker of a namespace
needs the same store (it is part of :func:`lmthing.client.data_converter`).

- ``LMTHING_PAYLOAD_STORE=/path`` (or ``file:///path``): a folder, shared by the processes
  that read and write payloads (one machine, or a shared volume). ``lmthing dev`` uses
  ``.lmthing/payloads`` unless told otherwise.
- ``LMTHING_PAYLOAD_STORE=s3://bucket``: S3 through the SDK's ``S3StorageDriver`` and
  aioboto3 (``pip install "lmthing[s3]"``); credentials, region and endpoint
  (``AWS_ENDPOINT_URL`` for an S3-compatible server) the way boto3 reads them. Keys are the
  SDK's (``v0/ns/<namespace>/wt/<type>/wi/<workflow id>/...``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    ExternalStorage,
    StorageDriver,
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverStoreContext,
)

STORE_VAR = "LMTHING_PAYLOAD_STORE"
THRESHOLD_VAR = "LMTHING_PAYLOAD_STORE_THRESHOLD"
DEFAULT_THRESHOLD = 256 * 1024


class PayloadStoreConfigError(ValueError):
    """``LMTHING_PAYLOAD_STORE`` cannot be used; the message says what to change."""


class FolderDriver(StorageDriver):
    """Payloads as files named by the SHA-256 of their bytes (so storing one twice is
    free), written atomically (a temporary file, then a rename)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def name(self) -> str:
        return "lmthing-folder"

    async def store(self, context: StorageDriverStoreContext, payloads: Sequence[Payload]) -> list[StorageDriverClaim]:
        return await asyncio.to_thread(self._store, [p.SerializeToString() for p in payloads])

    async def retrieve(self, context: StorageDriverRetrieveContext, claims: Sequence[StorageDriverClaim]) -> list[Payload]:
        return await asyncio.to_thread(self._retrieve, [c.claim_data["key"] for c in claims])

    def _store(self, blobs: list[bytes]) -> list[StorageDriverClaim]:
        self.folder.mkdir(parents=True, exist_ok=True)
        claims = []
        for blob in blobs:
            key = hashlib.sha256(blob).hexdigest()
            path = self.folder / key
            if not path.exists():
                part = path.with_suffix(f".{os.getpid()}.part")
                part.write_bytes(blob)
                part.replace(path)
            claims.append(StorageDriverClaim(claim_data={"key": key}))
        return claims

    def _retrieve(self, keys: list[str]) -> list[Payload]:
        out = []
        for key in keys:
            path = self.folder / key
            try:
                out.append(Payload.FromString(path.read_bytes()))
            except FileNotFoundError:
                raise FileNotFoundError(
                    f"Payload {key} is not in the payload store {self.folder}: every client and worker of this "
                    f"namespace needs the same {STORE_VAR}"
                ) from None
        return out


def external_storage_from_env(env: Mapping[str, str] | None = None) -> ExternalStorage | None:
    environ = os.environ if env is None else env
    where = (environ.get(STORE_VAR) or "").strip()
    if not where:
        return None
    raw_threshold = (environ.get(THRESHOLD_VAR) or str(DEFAULT_THRESHOLD)).strip()
    try:
        threshold = int(raw_threshold)
        if threshold < 0:
            raise ValueError
    except ValueError:
        raise PayloadStoreConfigError(f"{THRESHOLD_VAR}={raw_threshold!r}: give a size in bytes (>= 0)") from None
    return ExternalStorage(drivers=[_driver_for(where)], payload_size_threshold=threshold)


def _driver_for(where: str) -> StorageDriver:
    if where.startswith("s3://"):
        return _s3_driver(where)
    if "://" in where and not where.startswith("file://"):
        raise PayloadStoreConfigError(
            f"{STORE_VAR}={where!r}: use a folder (/path or file:///path) or s3://bucket"
        )
    folder = Path(where.removeprefix("file://")).expanduser()
    if not folder.is_absolute():
        raise PayloadStoreConfigError(f"{STORE_VAR}={where!r}: give an absolute path, the same for every process")
    return FolderDriver(folder)


def _s3_driver(where: str) -> StorageDriver:
    bucket = where.removeprefix("s3://").rstrip("/")
    if not bucket or "/" in bucket:
        raise PayloadStoreConfigError(f"{STORE_VAR}={where!r}: give a bucket, s3://bucket (keys are the SDK's own)")
    try:
        from .s3_store import S3Driver
    except ImportError as err:
        raise PayloadStoreConfigError(
            f"{STORE_VAR}={where!r} needs aioboto3 ({err}): pip install 'lmthing[s3]'"
        ) from None
    return S3Driver(bucket)


def store_configured(env: Mapping[str, Any] | None = None) -> bool:
    return bool(((os.environ if env is None else env).get(STORE_VAR) or "").strip())
