"""``lmthing codec-server`` in a subprocess, started as a user starts it, with its stderr
(where the audit log goes) kept in a file the tests read."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import REPO_ROOT, cli_env, free_port


def _env(extra: dict[str, str]) -> dict[str, str]:
    """The test's settings only: no payload keys or codec settings of the caller's shell."""
    base = {k: v for k, v in cli_env().items() if not k.startswith(("LMTHING_CODEC_", "LMTHING_PAYLOAD_", "LMTHING_LOG_"))}
    return {**base, **extra}


@dataclass
class CodecServer:
    url: str
    banner: str
    log: Path

    def audit(self) -> list[dict[str, Any]]:
        """The audit lines logged so far (``--log-format json``)."""
        lines = [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]
        return [line for line in lines if line.get("logger") == "lmthing.codec.audit"]


async def run_codec_server_cli(*args: str, env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run ``lmthing codec-server ARGS`` to its end (a refused configuration): exit code, output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lmthing", "codec-server", *args, cwd=REPO_ROOT, env=_env(env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"lmthing codec-server {' '.join(args)} did not stop by itself") from None
    return proc.returncode or 0, " ".join(out.decode().split())


@contextlib.asynccontextmanager
async def codec_server(*args: str, env: dict[str, str], log_dir: Path, scheme: str = "http") -> AsyncIterator[CodecServer]:
    """``lmthing codec-server --port P ARGS`` once it has printed its banner; stopped on exit."""
    port = free_port()
    log = log_dir / f"codec-server-{port}.stderr"
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "lmthing", "codec-server", "--port", str(port), *args,
            cwd=REPO_ROOT, env=_env(env), stdout=asyncio.subprocess.PIPE, stderr=err,
        )
    try:
        assert proc.stdout is not None
        banner = ""
        while "Ctrl-C" not in banner:
            try:
                line = await asyncio.wait_for(proc.stdout.readline(), 30)
            except TimeoutError:
                line = b""
            if not line:
                await proc.wait()
                raise AssertionError(f"codec-server did not start ({proc.returncode}): {banner}{log.read_text()}")
            banner += line.decode()
        yield CodecServer(f"{scheme}://127.0.0.1:{port}", banner, log)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def self_signed_cert(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate and key (PEM) for ``host``, made here with ``cryptography``: the Temporal
    UI forwards an access token to an https:// codec endpoint only."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "codec-cert.pem", folder / "codec-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path
