"""``lmthing codec-server``: the Temporal codec server protocol over the payload keys, for
authenticated callers only (:mod:`lmthing.codec_auth`): it decrypts every payload it is
sent, so it refuses to start without a way to tell who calls it, unless ``--no-auth``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from .common import CliError, _execute, app, console, serve_until_signal
from .worker import LogFormat, configure_logging

NO_AUTH_HELP = (
    "The codec server decrypts for whoever calls it, so it needs a way to tell who does: "
    "--token-file FILE (or LMTHING_CODEC_TOKEN) for a shared bearer token, and/or "
    "--oidc-issuer URL (with --oidc-audience) for the JWTs of your login provider; "
    "or --no-auth, for local development only."
)


@app.command("codec-server")
def codec_server(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8081,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    cors_origin: Annotated[
        list[str] | None,
        typer.Option("--cors-origin", help="Origin of the Temporal UI allowed to call it (repeatable; default http://localhost:8233)."),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(envvar="LMTHING_CODEC_TOKEN_FILE", help="File holding the shared bearer token (LMTHING_CODEC_TOKEN gives it directly)."),
    ] = None,
    oidc_issuer: Annotated[
        str | None,
        typer.Option(envvar="LMTHING_CODEC_OIDC_ISSUER", help="Accept JWTs of this OIDC issuer (its keys come from <issuer>/.well-known/openid-configuration)."),
    ] = None,
    oidc_audience: Annotated[
        str | None,
        typer.Option(envvar="LMTHING_CODEC_OIDC_AUDIENCE", help="With --oidc-issuer: the JWT's aud must include this."),
    ] = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace", envvar="LMTHING_CODEC_NAMESPACES",
            help="A namespace whose payloads it may encode/decode (repeatable; '*' for all; default: default, or all with --no-auth).",
        ),
    ] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Serve without authentication (local development only).")] = False,
    tls_cert: Annotated[Path | None, typer.Option(help="Serve HTTPS with this certificate (PEM); the UI forwards tokens to https:// only.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="The private key (PEM) of --tls-cert.")] = None,
    log_format: Annotated[
        LogFormat, typer.Option(envvar="LMTHING_LOG_FORMAT", help="Audit and other log lines: json (one object a line) or text.")
    ] = LogFormat.text,
    log_level: Annotated[str, typer.Option(envvar="LMTHING_LOG_LEVEL", help="Lowest level logged (audit lines are info).")] = "info",
) -> None:
    """Serve the Temporal codec server protocol (/encode, /decode) with the LMTHING_PAYLOAD_* keys,
    so the Temporal UI (Settings > Codec Server) or `temporal --codec-endpoint` show decrypted payloads
    to callers with a valid bearer token, for the allowed namespaces; each request is audit-logged."""

    async def go() -> None:
        from lmthing.codec import DEFAULT_CORS_ORIGINS, EncryptionCodec, PayloadKeyConfigError, codec_server_app
        from lmthing.codec_auth import CodecAuthConfigError

        configure_logging(log_format, log_level, [])
        try:
            codec = EncryptionCodec.from_env()
        except PayloadKeyConfigError as err:
            raise CliError(str(err), code=2) from None
        if codec is None:
            raise CliError("No payload key: set LMTHING_PAYLOAD_KEY (and LMTHING_PAYLOAD_KEY_ID) or LMTHING_PAYLOAD_KEYS.", code=2)
        try:
            auth = await _auth(token_file, oidc_issuer, oidc_audience, namespace, no_auth)
            ssl_context = _ssl_context(tls_cert, tls_key)
        except CodecAuthConfigError as err:
            raise CliError(str(err), code=2) from None
        from aiohttp import web

        origins = cors_origin or list(DEFAULT_CORS_ORIGINS)
        runner = web.AppRunner(codec_server_app(codec, origins, auth=auth), access_log=None)  # the audit log says more
        await runner.setup()
        try:
            try:
                await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
            except OSError as err:
                raise CliError(f"Cannot listen on {host}:{port}: {err.strerror or err}") from None
            scheme = "https" if ssl_context else "http"
            console.print(f"[bold]Codec server[/bold] on {scheme}://{host}:{port} (keys: {', '.join(codec.key_ids)}; encrypting with {codec.current})")
            console.print(f"  {auth.describe()}")
            console.print(f"  CORS origins: {', '.join(origins)}")
            console.print("  Ctrl-C (or SIGTERM) stops it.")
            await serve_until_signal(None)
        finally:
            await runner.cleanup()
        console.print("Codec server stopped.")

    _execute(go)


async def _auth(
    token_file: Path | None, issuer: str | None, audience: str | None, namespaces: list[str] | None, no_auth: bool
):
    from lmthing.codec_auth import CodecAuth, CodecAuthConfigError, OidcVerifier, check_shared_token, parse_namespaces, read_token_file

    # Default: the namespace lmthing uses, or, without auth (local development), any.
    allowed = parse_namespaces(namespaces) if namespaces is not None else frozenset({"*" if no_auth else "default"})
    env_token = os.environ.get("LMTHING_CODEC_TOKEN")
    if no_auth:
        given = [name for name, value in (("--token-file", token_file), ("LMTHING_CODEC_TOKEN", env_token), ("--oidc-issuer", issuer)) if value]
        if given:
            raise CodecAuthConfigError(f"--no-auth contradicts {', '.join(given)}: drop one or the other")
        return CodecAuth.disabled(allowed)
    if token_file is not None and env_token is not None:
        raise CodecAuthConfigError("both --token-file and LMTHING_CODEC_TOKEN give a shared token: keep one")
    shared = read_token_file(token_file) if token_file is not None else None
    if env_token is not None:
        shared = check_shared_token(env_token, "LMTHING_CODEC_TOKEN")
    if audience and not issuer:
        raise CodecAuthConfigError("--oidc-audience needs --oidc-issuer (the issuer whose tokens carry that audience)")
    oidc = await OidcVerifier.discover(issuer, audience) if issuer else None
    if shared is None and oidc is None:
        raise CodecAuthConfigError(NO_AUTH_HELP)
    return CodecAuth(shared_token=shared, oidc=oidc, namespaces=allowed)


def _ssl_context(cert: Path | None, key: Path | None):
    from lmthing.codec_auth import CodecAuthConfigError

    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise CodecAuthConfigError("--tls-cert and --tls-key go together: give both (PEM files)")
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as err:
        raise CodecAuthConfigError(f"cannot load --tls-cert {cert} / --tls-key {key}: {getattr(err, 'strerror', None) or err}") from None
    return context
