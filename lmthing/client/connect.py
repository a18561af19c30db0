"""The one place that builds a client (same data converter as the worker), and where its
connection settings come from: arguments, then Temporal's own environment configuration.

The settings are read by the SDK's loader (:mod:`temporalio.envconfig`), so the names are
the ones every Temporal tool uses: ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``,
``TEMPORAL_API_KEY`` (implies TLS), ``TEMPORAL_TLS``, ``TEMPORAL_TLS_CLIENT_CERT_PATH`` /
``TEMPORAL_TLS_CLIENT_KEY_PATH`` (mTLS), ``TEMPORAL_TLS_SERVER_CA_CERT_PATH``,
``TEMPORAL_TLS_SERVER_NAME``, ``TEMPORAL_GRPC_META_*``, and the profile file
(``TEMPORAL_CONFIG_FILE``, ``TEMPORAL_PROFILE``). We check the certificate files ourselves
first: the loader's own error for a missing file names the path but not the variable.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic_core import to_json
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.envconfig import ClientConfigProfile, ClientConfigTLS
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
_CONFIGURED: dict[tuple[Any, ...], tuple[Any, DataConverter]] = {}


def data_converter() -> DataConverter:
    """The converter every lmthing client and worker uses: JSON on the wire, encrypted with
    AES-GCM when ``LMTHING_PAYLOAD_KEY`` / ``LMTHING_PAYLOAD_KEYS`` are set (:mod:`lmthing.codec`),
    and large payloads kept out of history when ``LMTHING_PAYLOAD_STORE`` is set
    (:mod:`lmthing.client.payload_store`). The same settings give the same converter."""
    from .payload_store import STORE_VAR, THRESHOLD_VAR

    codec = codec_from_env()
    store_settings = (os.environ.get(STORE_VAR, "").strip(), os.environ.get(THRESHOLD_VAR, "").strip())
    if codec is None and not store_settings[0]:
        return _DATA_CONVERTER
    key = (id(codec), *store_settings)
    cached = _CONFIGURED.get(key)
    if cached is None or cached[0] is not codec:
        from .payload_store import external_storage_from_env

        converter = dataclasses.replace(_DATA_CONVERTER, payload_codec=codec, external_storage=external_storage_from_env())
        _CONFIGURED[key] = cached = (codec, converter)
    return cached[1]


class ConnectionConfigError(ValueError):
    """A connection setting that cannot be used; the message names the variable to fix."""


# Where each certificate of the SDK's TLS profile comes from, for error messages.
_TLS_FILES = {
    "server_root_ca_cert": ("TEMPORAL_TLS_SERVER_CA_CERT_PATH", "tls.server_ca_cert"),
    "client_cert": ("TEMPORAL_TLS_CLIENT_CERT_PATH", "tls.client_cert"),
    "client_private_key": ("TEMPORAL_TLS_CLIENT_KEY_PATH", "tls.client_key"),
}


def connect_options(
    address: str | None = None, namespace: str | None = None, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``Client.connect``: ``target_host`` and ``namespace`` (the
    arguments, else the environment / profile, else localhost:7233 and ``default``), and
    ``api_key``, ``tls``, ``rpc_metadata`` when configured. ``env`` defaults to ``os.environ``.

    Raises :class:`ConnectionConfigError` for an unknown profile, an unreadable certificate
    file, or half of a client certificate pair."""
    environ = dict(os.environ if env is None else env)
    try:
        profile = ClientConfigProfile.load(override_env_vars=environ)
    except Exception as err:  # the SDK's ConfigError: bad profile name or file
        raise ConnectionConfigError(
            f"Temporal client configuration: {err} (see TEMPORAL_PROFILE / TEMPORAL_CONFIG_FILE)"
        ) from None
    if profile.tls is not None and profile.tls.disabled is not True:
        profile = dataclasses.replace(profile, tls=_read_tls_files(profile.tls, environ))
    config: dict[str, Any] = dict(profile.to_client_connect_config())
    target, configured_namespace = config.pop("target_host", None), config.pop("namespace", None)
    return {"target_host": address or target or DEFAULT_ADDRESS, "namespace": namespace or configured_namespace or "default", **config}


def _read_tls_files(tls: ClientConfigTLS, environ: Mapping[str, str]) -> ClientConfigTLS:
    """The TLS profile with every certificate path replaced by the file's bytes."""
    loaded: dict[str, Any] = {}
    for field, (variable, toml_key) in _TLS_FILES.items():
        source = getattr(tls, field)
        if not isinstance(source, Path):
            continue
        origin = variable if environ.get(variable) else f"{toml_key} in the Temporal config file"
        try:
            loaded[field] = source.read_bytes()
        except OSError as err:
            raise ConnectionConfigError(
                f"{origin}={source}: cannot read the file ({err.strerror or err}). Fix the path or mount the file."
            ) from None
    tls = dataclasses.replace(tls, **loaded)
    cert, key = "TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH"
    if tls.client_cert is not None and tls.client_private_key is None:
        raise ConnectionConfigError(f"{cert} is set but {key} is not: a client certificate (mTLS) needs both.")
    if tls.client_private_key is not None and tls.client_cert is None:
        raise ConnectionConfigError(f"{key} is set but {cert} is not: a client certificate (mTLS) needs both.")
    return tls


class TemporalUnreachable(ConnectionError):
    """No Temporal server answered at the address; the message says what to do."""


async def connect(address: str | None = None, namespace: str | None = None, **client_options: Any) -> Client:
    """Connect with :func:`connect_options` (``address``, else ``TEMPORAL_ADDRESS``, else
    localhost:7233; TLS and API key from the environment) and lmthing's data converter.
    ``client_options`` go to ``Client.connect`` (e.g. ``runtime=``, ``identity=``).

    Raises :class:`ConnectionConfigError` for an address that is not one and
    :class:`TemporalUnreachable` when nothing answers, each with one line that says what to do."""
    from .payload_store import PayloadStoreConfigError

    options = connect_options(address, namespace)
    target = options.pop("target_host")
    try:
        converter = data_converter()
    except PayloadStoreConfigError as err:
        raise ConnectionConfigError(str(err)) from None
    try:
        return await Client.connect(target, data_converter=converter, **options, **client_options)
    except ValueError as err:
        raise ConnectionConfigError(
            f"{target!r} is not a Temporal address ({err}); give host:port, e.g. localhost:7233 "
            "(--address or TEMPORAL_ADDRESS)."
        ) from None
    except RuntimeError as err:
        raise TemporalUnreachable(unreachable_message(target, str(err))) from None


# Pauses between connection attempts of connect_waiting: doubling from the first to the cap.
RECONNECT_FIRST = 1.0
RECONNECT_CAP = 30.0


async def connect_waiting(
    address: str | None = None, namespace: str | None = None, *, timeout: float | None = None,
    on_retry: Callable[[int, float, TemporalUnreachable], None] | None = None, **client_options: Any,
) -> Client:
    """:func:`connect`, waiting for a server that does not answer yet (a worker pod that
    starts before Temporal, a server being restarted): tries again after a pause that doubles
    from 1 s up to 30 s, calling ``on_retry(attempt, pause, error)`` before each pause, for at
    most ``timeout`` seconds (None: until it answers). A setting that cannot work
    (:class:`ConnectionConfigError`) is raised at once; so is the last
    :class:`TemporalUnreachable` when time is up."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    pause, attempt = RECONNECT_FIRST, 1
    while True:
        try:
            return await connect(address, namespace, **client_options)
        except TemporalUnreachable as err:
            if deadline is not None and loop.time() + pause > deadline:
                raise
            if on_retry is not None:
                on_retry(attempt, pause, err)
        await asyncio.sleep(pause)
        pause, attempt = min(pause * 2, RECONNECT_CAP), attempt + 1


def unreachable_message(target: str, error: str) -> str:
    """One line for a failed connection (the SDK's is a Rust transport dump)."""
    lowered = error.lower()
    if "connection refused" in lowered or "connectionrefused" in lowered:
        why = "the connection was refused (no server listens there)"
    elif "dns error" in lowered or "lookup address" in lowered or "name or service not known" in lowered:
        why = "the host name does not resolve"
    elif "timed out" in lowered or "deadline" in lowered:
        why = "the connection timed out"
    elif "certificate" in lowered or "tls" in lowered or "handshake" in lowered:
        why = "the TLS handshake failed (check TEMPORAL_TLS* and whether the server expects TLS)"
    else:
        why = error.split("\n", 1)[0][:200]
    return (
        f"Cannot connect to Temporal at {target}: {why}. For a local server run `lmthing dev`; "
        "otherwise pass --address host:port or set TEMPORAL_ADDRESS."
    )


def namespace_missing_message(namespace: str) -> str:
    return (
        f"Namespace {namespace!r} does not exist on this Temporal server. Pass --namespace (or set "
        f"TEMPORAL_NAMESPACE) to one that does, or create it: temporal operator namespace create --namespace {namespace}"
    )
