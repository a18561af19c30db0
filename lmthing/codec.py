"""Optional payload encryption: an AES-GCM ``PayloadCodec`` and the codec server the
Temporal UI calls to show decrypted payloads.

Turned on by the environment, read by :func:`lmthing.client.connect.data_converter` (so by
every client and worker lmthing builds):

* ``LMTHING_PAYLOAD_KEY``: base64 of a 32-byte key; new payloads are encrypted with it.
* ``LMTHING_PAYLOAD_KEY_ID``: its id (default ``default``), written in every payload's
  metadata (``encryption-key-id``) so that a reader knows which key to use.
* ``LMTHING_PAYLOAD_KEYS``: ``id1:base64,id2:base64``: more keys, for decryption (key
  rotation: keep the old key here while histories encrypted with it are still read). With
  only this variable set, the key named by ``LMTHING_PAYLOAD_KEY_ID`` (else the first one)
  encrypts.

Encrypted payloads have the encoding ``binary/encrypted``; their data is a 12-byte random
nonce followed by the AES-GCM ciphertext of the serialized original ``Payload`` (metadata
included), authenticated together with the key id. Payloads without that encoding are
passed through on decode, so histories written before encryption was turned on stay readable.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
DEFAULT_KEY_ID = "default"
NONCE_BYTES = 12

ENV_KEY = "LMTHING_PAYLOAD_KEY"
ENV_KEY_ID = "LMTHING_PAYLOAD_KEY_ID"
ENV_KEYS = "LMTHING_PAYLOAD_KEYS"
ENV_VARS = (ENV_KEY, ENV_KEY_ID, ENV_KEYS)


class PayloadKeyError(ValueError):
    """A payload cannot be decrypted with the keys this process has."""


class PayloadKeyConfigError(ValueError):
    """The ``LMTHING_PAYLOAD_*`` variables are set, but wrongly."""


def generate_key() -> str:
    """A new random key, base64 (the value for ``LMTHING_PAYLOAD_KEY``)."""
    return base64.b64encode(os.urandom(32)).decode()


def _decode_key(value: str, where: str) -> bytes:
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise PayloadKeyConfigError(f"{where} is not valid base64") from None
    if len(key) != 32:
        raise PayloadKeyConfigError(
            f"{where} must be 32 bytes (AES-256) in base64, got {len(key)} bytes; "
            "make one with: python -c 'import lmthing.codec as c; print(c.generate_key())'"
        )
    return key


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over whole payloads; ``keys`` maps key id to key, ``current`` encrypts."""

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError:  # pragma: no cover - depends on the environment
            raise PayloadKeyConfigError(
                "payload encryption needs the `cryptography` package: pip install cryptography"
            ) from None
        if current not in keys:
            raise PayloadKeyConfigError(f"the current key id {current!r} is not among the keys ({', '.join(keys)})")
        for key_id, key in keys.items():
            if not key_id or "," in key_id or ":" in key_id:
                raise PayloadKeyConfigError(f"invalid key id {key_id!r}: it must be non-empty, without ',' or ':'")
            if len(key) != 32:
                raise PayloadKeyConfigError(f"key {key_id!r} must be 32 bytes, got {len(key)}")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current = current

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EncryptionCodec | None:
        """The codec the environment asks for, or None when encryption is off."""
        env = os.environ if env is None else env
        key, key_id, many = (env.get(name, "").strip() for name in ENV_VARS)
        if not (key or many):
            if key_id:
                raise PayloadKeyConfigError(f"{ENV_KEY_ID} is set but neither {ENV_KEY} nor {ENV_KEYS} is")
            return None
        keys: dict[str, bytes] = {}
        for i, entry in enumerate(e.strip() for e in many.split(",")):
            if not entry:
                continue
            name, sep, value = entry.partition(":")
            if not sep or not name.strip():
                raise PayloadKeyConfigError(f"{ENV_KEYS} entry {i + 1} is not id:base64")
            keys[name.strip()] = _decode_key(value, f"{ENV_KEYS} key {name.strip()!r}")
        if key:
            current = key_id or DEFAULT_KEY_ID
            value = _decode_key(key, ENV_KEY)
            if keys.get(current, value) != value:
                raise PayloadKeyConfigError(f"{ENV_KEYS} gives key id {current!r} a different key than {ENV_KEY}")
            keys[current] = value
        else:
            if not keys:
                raise PayloadKeyConfigError(f"{ENV_KEYS} is set but holds no id:base64 entry")
            current = key_id or next(iter(keys))
            if current not in keys:
                raise PayloadKeyConfigError(f"{ENV_KEY_ID}={current!r} is not among the ids in {ENV_KEYS}")
        return cls(keys, current)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.current.encode()
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.current].encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        raw_id = payload.metadata.get(KEY_ID_METADATA)
        if raw_id is None:
            raise PayloadKeyError(f"encrypted payload without an {KEY_ID_METADATA!r} in its metadata")
        key_id = raw_id.decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadKeyError(
                f"payload was encrypted with key id {key_id!r}, which this process does not have "
                f"(it has: {', '.join(self._ciphers)}); add it for decryption with "
                f"{ENV_KEYS}={key_id}:<base64 key>"
            )
        from cryptography.exceptions import InvalidTag

        try:
            plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], raw_id)
        except InvalidTag:
            raise PayloadKeyError(
                f"payload encrypted with key id {key_id!r} does not decrypt with this process's key of that id "
                "(a different key under the same id, or corrupted data)"
            ) from None
        out = Payload()
        out.ParseFromString(plain)
        return out


_CACHE: dict[tuple[str, ...], EncryptionCodec | None] = {}


def codec_from_env() -> EncryptionCodec | None:
    """:meth:`EncryptionCodec.from_env` for ``os.environ``, built once per distinct setting."""
    config = tuple(os.environ.get(name, "") for name in ENV_VARS)
    if config not in _CACHE:
        _CACHE[config] = EncryptionCodec.from_env()
    return _CACHE[config]


# ------------------------------------------------------------------------- codec server
DEFAULT_CORS_ORIGINS = ("http://localhost:8233",)


def codec_server_app(codec: PayloadCodec, cors_origins: Iterable[str] = DEFAULT_CORS_ORIGINS, *, auth: Any) -> Any:
    """An ``aiohttp`` application speaking the Temporal codec server protocol.

    ``POST /encode`` and ``POST /decode`` take and return ``{"payloads": [...]}`` (protobuf
    JSON of ``temporal.api.common.v1.Payloads``: metadata values and data in base64), as the
    Temporal UI and ``temporal --codec-endpoint`` send them. Requests from ``cors_origins``
    get CORS headers (the UI calls the codec server from the browser).

    ``auth`` (a :class:`lmthing.codec_auth.CodecAuth`, required so that no caller forgets
    it) decides who may call it and for which namespace; refusals are 401/403 with a JSON
    body ``{"error": reason, "message": ...}``. CORS preflights (``OPTIONS``) need no token:
    browsers send them without credentials. Every request gets an audit log line."""
    from aiohttp import hdrs, web
    from google.protobuf import json_format
    from temporalio.api.common.v1 import Payloads

    from lmthing.codec_auth import Refused, audit, www_authenticate

    origins = {o.rstrip("/") for o in cors_origins}

    def cors(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        origin = request.headers.get(hdrs.ORIGIN)
        if origin and (origin.rstrip("/") in origins or "*" in origins):
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = "POST, OPTIONS"
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = "content-type, x-namespace, authorization, authorization-extras"
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
            response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = "www-authenticate"
            response.headers[hdrs.VARY] = "Origin"
        return response

    async def preflight(request: web.Request) -> web.StreamResponse:
        return cors(request, web.Response())

    def handler(name: str) -> Any:
        async def apply(request: web.Request) -> web.StreamResponse:
            namespace = request.headers.get("X-Namespace", "").strip()
            seen = {"namespace": namespace, "endpoint": f"/{name}", "origin": request.headers.get(hdrs.ORIGIN), "remote": request.remote}
            try:
                caller = await auth.admit(request.headers, namespace)
            except Refused as refusal:
                audit(caller=None, payloads=0, key_ids=(), status=refusal.status, reason=refusal.reason, **seen)
                headers = {hdrs.WWW_AUTHENTICATE: www_authenticate(refusal)} if refusal.status == 401 else None
                body = {"error": refusal.reason, "message": refusal.message}
                return cors(request, web.json_response(body, status=refusal.status, headers=headers))
            count, key_ids = 0, []
            try:
                payloads = json_format.Parse(await request.read(), Payloads())
                count = len(payloads.payloads)
                fn = codec.encode if name == "encode" else codec.decode
                out = Payloads(payloads=await fn(payloads.payloads))
                sealed = payloads.payloads if name == "decode" else out.payloads
                key_ids = [p.metadata[KEY_ID_METADATA].decode(errors="replace") for p in sealed if KEY_ID_METADATA in p.metadata]
            except (json_format.ParseError, ValueError) as err:
                # The audit line names the error type only: a parse error may quote the input.
                audit(caller=caller, payloads=count, key_ids=key_ids, status=400, reason=type(err).__name__, **seen)
                return cors(request, web.json_response({"error": f"{type(err).__name__}: {err}"}, status=400))
            audit(caller=caller, payloads=count, key_ids=key_ids, status=200, **seen)
            return cors(request, web.Response(text=json_format.MessageToJson(out), content_type="application/json"))

        return apply

    app = web.Application()
    for name in ("encode", "decode"):
        app.router.add_post(f"/{name}", handler(name))
        app.router.add_route("OPTIONS", f"/{name}", preflight)
    return app
