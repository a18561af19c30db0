"""``lmthing codec-server``: the Temporal codec server protocol over the payload keys."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import CliError, _execute, app, console, serve_until_signal


@app.command("codec-server")
def codec_server(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8081,
    host: Annotated[str, typer.Option(help="Address to bind (it decrypts for anyone who reaches it).")] = "127.0.0.1",
    cors_origin: Annotated[
        list[str] | None,
        typer.Option("--cors-origin", help="Origin of the Temporal UI allowed to call it (repeatable; default http://localhost:8233)."),
    ] = None,
) -> None:
    """Serve the Temporal codec server protocol (/encode, /decode) with the LMTHING_PAYLOAD_* keys,
    so the Temporal UI (Settings > Codec Server) or `temporal --codec-endpoint` show decrypted payloads."""

    async def go() -> None:
        from lmthing.codec import (
            DEFAULT_CORS_ORIGINS,
            EncryptionCodec,
            PayloadKeyConfigError,
            codec_server_app,
        )

        try:
            codec = EncryptionCodec.from_env()
        except PayloadKeyConfigError as err:
            raise CliError(str(err), code=2) from None
        if codec is None:
            raise CliError("No payload key: set LMTHING_PAYLOAD_KEY (and LMTHING_PAYLOAD_KEY_ID) or LMTHING_PAYLOAD_KEYS.", code=2)
        try:
            from aiohttp import web
        except ImportError:
            raise CliError("The codec server needs aiohttp: pip install aiohttp") from None

        origins = cors_origin or list(DEFAULT_CORS_ORIGINS)
        runner = web.AppRunner(codec_server_app(codec, origins))
        await runner.setup()
        try:
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as err:
                raise CliError(f"Cannot listen on {host}:{port}: {err.strerror or err}") from None
            console.print(f"[bold]Codec server[/bold] on http://{host}:{port} (keys: {', '.join(codec.key_ids)}; encrypting with {codec.current})")
            console.print(f"  CORS origins: {', '.join(origins)}")
            console.print("  Ctrl-C (or SIGTERM) stops it.")
            await serve_until_signal(None)
        finally:
            await runner.cleanup()
        console.print("Codec server stopped.")

    _execute(go)
