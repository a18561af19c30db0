"""Client connection settings from Temporal's environment variables (lmthing.client.connect)."""

from __future__ import annotations

import time

import pytest
from temporalio.service import TLSConfig

from lmthing.client import ConnectionConfigError, connect, connect_options

from .test_cli import lmthing


def test_no_settings_mean_the_local_dev_server():
    assert connect_options(env={}) == {"target_host": "localhost:7233", "namespace": "default"}


def test_an_api_key_turns_tls_on():
    env = {"TEMPORAL_ADDRESS": "ns.acct.tmprl.cloud:7233", "TEMPORAL_NAMESPACE": "ns.acct", "TEMPORAL_API_KEY": "k-123"}
    assert connect_options(env=env) == {
        "target_host": "ns.acct.tmprl.cloud:7233", "namespace": "ns.acct", "api_key": "k-123", "tls": True,
    }


def test_arguments_win_over_the_environment():
    options = connect_options("other:7233", "mine", env={"TEMPORAL_ADDRESS": "env:7233", "TEMPORAL_NAMESPACE": "theirs"})
    assert (options["target_host"], options["namespace"]) == ("other:7233", "mine")


def test_mtls_files_are_read_into_the_tls_config(tmp_path):
    files = {"ca.pem": b"CA CERT", "client.pem": b"CLIENT CERT", "client.key": b"CLIENT KEY"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    env = {
        "TEMPORAL_ADDRESS": "temporal.internal:7233",
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(tmp_path / "client.pem"),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(tmp_path / "client.key"),
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(tmp_path / "ca.pem"),
        "TEMPORAL_TLS_SERVER_NAME": "temporal.internal",
    }
    tls = connect_options(env=env)["tls"]
    assert tls == TLSConfig(
        server_root_ca_cert=b"CA CERT", domain="temporal.internal", client_cert=b"CLIENT CERT",
        client_private_key=b"CLIENT KEY",
    )


def test_tls_true_without_files_uses_the_system_roots():
    assert connect_options(env={"TEMPORAL_TLS": "true"})["tls"] == TLSConfig()


def test_tls_false_turns_tls_off_even_with_an_api_key():
    assert connect_options(env={"TEMPORAL_API_KEY": "k", "TEMPORAL_TLS": "false"})["tls"] is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TEMPORAL_TLS_CLIENT_CERT_PATH": "/no/such/client.pem", "TEMPORAL_TLS_CLIENT_KEY_PATH": "/etc/hostname"},
         "TEMPORAL_TLS_CLIENT_CERT_PATH=/no/such/client.pem: cannot read the file (No such file or directory)"),
        ({"TEMPORAL_TLS": "true", "TEMPORAL_TLS_SERVER_CA_CERT_PATH": "/"},
         "TEMPORAL_TLS_SERVER_CA_CERT_PATH=/: cannot read the file (Is a directory)"),
        ({"TEMPORAL_TLS_CLIENT_CERT_PATH": "/etc/hostname"},
         "TEMPORAL_TLS_CLIENT_CERT_PATH is set but TEMPORAL_TLS_CLIENT_KEY_PATH is not"),
        ({"TEMPORAL_PROFILE": "nope"}, "Profile 'nope' not found"),
    ],
)
def test_unusable_settings_name_the_variable(env, message):
    with pytest.raises(ConnectionConfigError) as err:
        connect_options(env=env)
    assert message in str(err.value)


async def test_connect_fails_before_dialling_on_a_missing_certificate(monkeypatch):
    # An address where nothing listens: failing on the file must come first, and fast.
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", "/no/such/client.pem")
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", "/no/such/client.key")
    with pytest.raises(ConnectionConfigError, match="TEMPORAL_TLS_CLIENT_CERT_PATH"):
        await connect("127.0.0.1:9")


async def test_the_cli_names_the_variable_of_a_missing_certificate():
    started = time.monotonic()
    done = await lmthing(
        "worker", "--app", "tests.apps.pools_app",
        TEMPORAL_ADDRESS="127.0.0.1:9", TEMPORAL_TLS_CLIENT_CERT_PATH="/no/such/client.pem",
        TEMPORAL_TLS_CLIENT_KEY_PATH="/no/such/client.key",
    )
    assert done.code == 2
    assert "TEMPORAL_TLS_CLIENT_CERT_PATH=/no/such/client.pem: cannot read the file" in done.err
    assert "Traceback" not in done.err
    assert time.monotonic() - started < 20  # no connection retries
