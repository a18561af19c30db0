"""First contact (issue 14, the items done so far): a wrong address or namespace gets one
line that names it and what to do, never a transport dump or a traceback."""

from __future__ import annotations

import pytest

from tests.test_cli import lmthing


@pytest.mark.parametrize(("address", "said", "code"), [
    ("127.0.0.1:1", "Cannot connect to Temporal at 127.0.0.1:1: the connection was refused (no server listens there). "
     "For a local server run `lmthing dev`; otherwise pass --address host:port or set TEMPORAL_ADDRESS.", 1),
    ("garbage:::x", "'garbage:::x' is not a Temporal address (invalid target URL: invalid port number); give host:port, "
     "e.g. localhost:7233", 2),
    ("no-such-host.invalid:7233", "Cannot connect to Temporal at no-such-host.invalid:7233: the host name does not resolve.", 1),
])
@pytest.mark.parametrize("command", [["approvals"], ["history", "export", "some-id"], ["worker", "--app", "examples.consensus"]])
async def test_a_bad_address_gets_one_line(address: str, said: str, code: int, command: list[str]) -> None:
    done = await lmthing(*command, "--address", address)
    assert done.code == code, done.err
    text = " ".join(done.err.split())
    assert said in text
    assert "Traceback" not in done.err and "tonic" not in done.err


async def test_a_missing_namespace_gets_one_line(dev_env) -> None:
    address = dev_env.client.service_client.config.target_host
    for command in (["approvals"], ["run", "examples/consensus.py"]):
        done = await lmthing(*command, "--address", address, "--namespace", "nope")
        assert done.code == 2, done.err
        assert "Namespace 'nope' does not exist on this Temporal server. Pass --namespace" in " ".join(done.err.split())
        assert "Traceback" not in done.err
