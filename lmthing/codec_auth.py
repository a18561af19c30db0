"""Who may decrypt: the authentication, namespace allow-list and audit log of
``lmthing codec-server`` (:func:`lmthing.codec.codec_server_app`).

The codec server holds the payload keys, so whoever reaches it reads every payload of every
run. Hence every ``/encode`` and ``/decode`` request must carry ``Authorization: Bearer <token>``
(the form the Temporal UI's "pass access token" and ``temporal --codec-auth`` both send),
where the token is either

* the shared token of the server (compared in constant time), for scripts and the CLI, or
* a JWT of a trusted OIDC issuer: its keys are found from ``<issuer>/.well-known/openid-configuration``
  -> ``jwks_uri`` (PyJWT's ``PyJWKClient``), and its signature, ``iss``, ``exp`` and, when
  configured, ``aud`` are checked (what a UI with login forwards: its user's access token).

Then the request's namespace (the ``X-Namespace`` header the UI and CLI send) must be on the
allow-list. A refusal says what is wrong (no token, bad token, expired, wrong issuer, wrong
audience, namespace not allowed), and every request, admitted or refused, gets one audit log
line: who, namespace, endpoint, payload count and key ids, never a payload's content.

Nothing here imports temporalio: this is plain HTTP-edge logic, testable on its own.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

audit_logger = logging.getLogger("lmthing.codec.audit")

ANY_NAMESPACE = "*"
MIN_SHARED_TOKEN_CHARS = 16
# Asymmetric algorithms only: a JWT must be signed with the issuer's private key. HS* (a
# shared secret) and "none" are refused, so a token cannot pick its own verification key.
JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
DISCOVERY_PATH = "/.well-known/openid-configuration"
REALM = "lmthing-codec"


class CodecAuthConfigError(ValueError):
    """The codec server's authentication settings are wrong; the message names the fix."""


class Refused(Exception):
    """A request the codec server refuses: HTTP ``status`` (401, 403), a short ``reason``
    (machine-readable, e.g. ``expired``) and a ``message`` for the person who sent it."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


@dataclass(frozen=True)
class Caller:
    """Who a request comes from, as the audit log names it."""

    subject: str  # the JWT's ``sub``, "shared-token", or "anonymous" (--no-auth)
    method: str  # "jwt", "shared-token" or "none"


def read_token_file(path: str | Path) -> str:
    """The shared token in ``path`` (surrounding whitespace dropped), checked for length."""
    try:
        token = Path(path).read_text().strip()
    except OSError as err:
        raise CodecAuthConfigError(
            f"cannot read the token file {path}: {err.strerror or err}; give a readable file with --token-file "
            "(or the token itself in LMTHING_CODEC_TOKEN)"
        ) from None
    return check_shared_token(token, f"the token file {path}")


def check_shared_token(token: str, where: str) -> str:
    token = token.strip()
    if len(token) < MIN_SHARED_TOKEN_CHARS:
        raise CodecAuthConfigError(
            f"{where} holds {'no token' if not token else f'a token of {len(token)} characters'}; use at least "
            f"{MIN_SHARED_TOKEN_CHARS} random characters, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return token


def parse_namespaces(values: Iterable[str]) -> frozenset[str]:
    """The allow-list from ``--namespace`` values (each may hold several, comma- or space-separated)."""
    names = frozenset(n for v in values for n in v.replace(",", " ").split())
    if not names:
        raise CodecAuthConfigError(
            "the namespace allow-list is empty; name the namespaces whose payloads may be decoded with "
            f"--namespace NAME (repeatable), or --namespace '{ANY_NAMESPACE}' for all of them"
        )
    return names


# ----------------------------------------------------------------------------- OIDC
@dataclass
class OidcVerifier:
    """Checks JWTs against one OIDC issuer's published keys (fetched again on an unknown ``kid``)."""

    issuer: str
    audience: str | None
    jwks_uri: str
    jwks: Any = field(repr=False)  # jwt.PyJWKClient

    @classmethod
    async def discover(cls, issuer: str, audience: str | None = None, timeout: float = 10.0) -> OidcVerifier:
        """Read the issuer's discovery document and keys now, so a wrong URL or an issuer that is
        down stops the server at start-up instead of refusing every request later."""
        return await asyncio.to_thread(cls._discover, issuer.strip(), audience, timeout)

    @classmethod
    def _discover(cls, issuer: str, audience: str | None, timeout: float) -> OidcVerifier:
        try:
            import jwt
        except ImportError:  # pragma: no cover - a dependency of lmthing
            raise CodecAuthConfigError("--oidc-issuer needs PyJWT: pip install 'pyjwt[crypto]'") from None
        if not issuer.startswith(("https://", "http://")):
            raise CodecAuthConfigError(f"--oidc-issuer {issuer!r} is not an http(s) URL (e.g. https://login.example.com/)")
        url = issuer.rstrip("/") + DISCOVERY_PATH
        fix = "check --oidc-issuer and that the issuer is up"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as answer:
                document = json.loads(answer.read())
        except urllib.error.HTTPError as err:
            raise CodecAuthConfigError(f"the OIDC issuer answered {url} with HTTP {err.code}; {fix}") from None
        except (OSError, ValueError) as err:
            reason = getattr(err, "reason", None) or err
            raise CodecAuthConfigError(f"cannot read the OIDC discovery document {url}: {reason}; {fix}") from None
        if not isinstance(document, dict) or not isinstance(document.get("jwks_uri"), str):
            raise CodecAuthConfigError(f"{url} has no jwks_uri: is {issuer} an OIDC issuer?")
        if document.get("issuer") != issuer:
            # OpenID Connect Discovery 4.3: the document's issuer must be the URL it was found from.
            raise CodecAuthConfigError(
                f"{url} names the issuer {document.get('issuer')!r}, not {issuer!r}; give --oidc-issuer exactly "
                "as the issuer writes it in its tokens' iss claim"
            )
        jwks = jwt.PyJWKClient(document["jwks_uri"], cache_keys=True, lifespan=300, timeout=int(timeout))
        try:
            keys = jwks.get_signing_keys()
        except jwt.PyJWKClientError as err:
            raise CodecAuthConfigError(f"cannot use the issuer's keys at {document['jwks_uri']}: {err}; {fix}") from None
        if not keys:  # pragma: no cover - get_signing_keys raises on an empty set
            raise CodecAuthConfigError(f"{document['jwks_uri']} holds no signing key")
        return cls(issuer, audience, document["jwks_uri"], jwks)

    async def verify(self, token: str) -> Caller:
        # PyJWKClient fetches with urllib (blocking) when it meets a kid it has not cached.
        return await asyncio.to_thread(self._verify, token)

    def _verify(self, token: str) -> Caller:
        import jwt

        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.DecodeError:
            raise Refused(401, "bad_token", "the bearer token is neither the shared token nor a JWT") from None
        issued_by = unverified.get("iss")
        if issued_by != self.issuer:
            raise Refused(401, "wrong_issuer", f"the token was issued by {issued_by!r}; this codec server trusts {self.issuer!r}")
        try:
            key = self.jwks.get_signing_key_from_jwt(token)
        except (jwt.PyJWKClientError, jwt.DecodeError) as err:
            raise Refused(401, "bad_token", f"no key of the issuer verifies the token ({err})") from None
        try:
            claims = jwt.decode(
                token, key.key, algorithms=list(JWT_ALGORITHMS), issuer=self.issuer, audience=self.audience,
                options={"require": ["exp", "iss", "sub"], "verify_aud": self.audience is not None}, leeway=30,
            )
        except jwt.ExpiredSignatureError:
            raise Refused(401, "expired", "the token has expired; sign in again for a fresh one") from None
        except jwt.InvalidAudienceError:
            raise Refused(401, "wrong_audience", f"the token is not meant for this codec server (its audience is not {self.audience!r})") from None
        except jwt.InvalidIssuerError:  # pragma: no cover - checked above, before the signature
            raise Refused(401, "wrong_issuer", f"the token was not issued by {self.issuer!r}") from None
        except jwt.MissingRequiredClaimError as err:
            if err.claim == "aud":
                raise Refused(401, "wrong_audience", f"the token names no audience; this codec server wants {self.audience!r}") from None
            raise Refused(401, "bad_token", f"the token has no {err.claim!r} claim") from None
        except jwt.ImmatureSignatureError:
            raise Refused(401, "bad_token", "the token is not valid yet (nbf/iat in the future)") from None
        except jwt.InvalidTokenError as err:
            raise Refused(401, "bad_token", f"the token does not verify: {err}") from None
        return Caller(str(claims["sub"]), "jwt")


# -------------------------------------------------------------------------- the policy
@dataclass
class CodecAuth:
    """Who may call the codec server, and for which namespaces.

    ``enabled=False`` (``--no-auth``) admits every request as "anonymous", still audited and
    still bound by the namespace allow-list."""

    shared_token: str | None = field(default=None, repr=False)
    oidc: OidcVerifier | None = None
    namespaces: frozenset[str] = frozenset({"default"})
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.enabled and self.shared_token is None and self.oidc is None:
            raise CodecAuthConfigError("authentication is on but neither a shared token nor an OIDC issuer is configured")
        if not self.namespaces:
            raise CodecAuthConfigError("the namespace allow-list is empty")

    @classmethod
    def disabled(cls, namespaces: Iterable[str] = (ANY_NAMESPACE,)) -> CodecAuth:
        return cls(enabled=False, namespaces=frozenset(namespaces))

    def describe(self) -> str:
        """One line for the start-up banner."""
        if not self.enabled:
            who = "NONE (--no-auth): anyone who reaches it can decrypt"
        else:
            forms = (["shared token"] if self.shared_token else []) + (
                [f"JWTs of {self.oidc.issuer}" + (f" for audience {self.oidc.audience}" if self.oidc.audience else "")]
                if self.oidc else []
            )
            who = " or ".join(forms)
        spaces = "any" if ANY_NAMESPACE in self.namespaces else ", ".join(sorted(self.namespaces))
        return f"auth: {who}; namespaces: {spaces}"

    async def admit(self, headers: Mapping[str, str], namespace: str) -> Caller:
        """The caller of a request with these headers for ``namespace``, or :class:`Refused`."""
        caller = await self._authenticate(headers)
        if ANY_NAMESPACE not in self.namespaces and namespace not in self.namespaces:
            allowed = ", ".join(sorted(self.namespaces))
            if not namespace:
                raise Refused(403, "namespace_not_allowed", f"the request names no namespace (X-Namespace header); this codec server serves: {allowed}")
            raise Refused(403, "namespace_not_allowed", f"namespace {namespace!r} is not served by this codec server (it serves: {allowed})")
        return caller

    async def _authenticate(self, headers: Mapping[str, str]) -> Caller:
        if not self.enabled:
            return Caller("anonymous", "none")
        scheme, _, token = headers.get("Authorization", "").strip().partition(" ")
        token = token.strip()
        if not scheme:
            raise Refused(401, "no_token", "no Authorization header: send 'Authorization: Bearer <token>'")
        if scheme.lower() != "bearer" or not token:
            raise Refused(401, "bad_token", "the Authorization header is not 'Bearer <token>'")
        if self.shared_token is not None and hmac.compare_digest(token.encode(), self.shared_token.encode()):
            return Caller("shared-token", "shared-token")
        if self.oidc is None:
            raise Refused(401, "bad_token", "the bearer token is not this codec server's token")
        return await self.oidc.verify(token)


def www_authenticate(refusal: Refused) -> str:
    """The ``WWW-Authenticate`` value of a 401 (RFC 6750 section 3)."""
    if refusal.reason == "no_token":
        return f'Bearer realm="{REALM}"'
    description = refusal.message.replace("\\", "").replace('"', "'")
    return f'Bearer realm="{REALM}", error="invalid_token", error_description="{description}"'


def audit(
    *, caller: Caller | None, namespace: str, endpoint: str, payloads: int, key_ids: Iterable[str],
    status: int, reason: str = "ok", origin: str | None = None, remote: str | None = None,
) -> None:
    """One line per codec request: who, which namespace, which endpoint, how many payloads,
    which keys. Payload contents never reach it (only counts and key-id metadata do)."""
    who = caller.subject if caller else "unauthenticated"
    keys = sorted(set(key_ids))
    outcome = "ok" if status < 400 else f"refused {status} {reason}"
    audit_logger.info(
        "codec %s by %s in namespace %s: %d payload(s), keys %s, %s",
        endpoint, who, namespace or "(none)", payloads, ",".join(keys) or "-", outcome,
        extra={
            "subject": who, "auth_method": caller.method if caller else None, "namespace": namespace or None,
            "endpoint": endpoint, "payload_count": payloads, "key_ids": keys, "status": status,
            "reason": reason, "origin": origin, "remote": remote,
        },
    )
