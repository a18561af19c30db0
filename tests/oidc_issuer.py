"""A tiny real OIDC issuer for tests: an aiohttp server on 127.0.0.1 that publishes
``/.well-known/openid-configuration`` and a JWKS of an RSA key made here with
``cryptography``, and signs JWTs with it (PyJWT). The codec server finds and checks its
keys exactly as it would a real provider's."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support import free_port


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Issuer:
    url: str
    key: rsa.RSAPrivateKey
    kid: str
    runner: web.AppRunner
    requests: list[str] = field(default_factory=list)

    def sign(self, *, key: rsa.RSAPrivateKey | None = None, kid: str | None = None, **claims: Any) -> str:
        """A JWT of this issuer for ``claims`` (iss, iat, exp in 5 minutes, unless given)."""
        now = int(time.time())
        body = {"iss": self.url, "iat": now, "exp": now + 300, **claims}
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_issuer() -> Issuer:
    key, kid = new_rsa_key(), f"test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwks = {"keys": [{**public, "kid": kid, "use": "sig", "alg": "RS256"}]}
    seen: list[str] = []

    async def discovery(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({
            "issuer": url, "jwks_uri": f"{url}/jwks.json", "authorization_endpoint": f"{url}/authorize",
            "token_endpoint": f"{url}/token", "id_token_signing_alg_values_supported": ["RS256"],
        })

    async def keys(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response(jwks)

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_get("/jwks.json", keys)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return Issuer(url, key, kid, runner, seen)
