"""``lmthing breakers``: the circuit breakers' state (docs/circuit-breakers.md)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from .common import AddressOption, CliError, NamespaceOption, _connect_for, _execute, app, console

if TYPE_CHECKING:
    from lmthing.resilience.breaker import BreakerSnapshot

_STYLE = {"closed": "green", "half_open": "yellow", "open": "red"}


@app.command()
def breakers(
    name: Annotated[str | None, typer.Argument(help="One breaker's name (default: list them all).")] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Close the breaker NAME now (no failures, no permits).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (machine-readable).")] = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Show the circuit breakers (closed / half-open / open), or one of them; --reset closes it."""

    async def go() -> None:
        from lmthing.client.breakers import UnknownBreaker, breaker_state, list_breakers, reset_breaker

        if reset and name is None:
            raise CliError("--reset needs the breaker's NAME: lmthing breakers NAME --reset", code=2)
        client = await _connect_for(address, namespace)
        if reset:
            try:
                found = [await reset_breaker(client, name)]  # type: ignore[arg-type]
            except UnknownBreaker as err:
                raise CliError(str(err), code=2) from None
        elif name is not None:
            one = await breaker_state(client, name)
            if one is None:
                raise CliError(f"No circuit breaker {name!r}: no call has used it yet (`lmthing breakers` lists them)", code=2)
            found = [one]
        else:
            found = await list_breakers(client)
        if as_json:
            console.print_json(json.dumps([s.model_dump(mode="json") for s in found]))
            return
        if not found:
            console.print("No circuit breaker has been used yet.")
            return
        for s in found:
            console.print(describe(s))

    _execute(go)


def describe(s: BreakerSnapshot, now: float | None = None) -> str:
    """One breaker on one line, e.g. ``payments open (5 consecutive failures; half-opens at ...)``."""
    from lmthing.resilience.breaker import iso

    now = time.time() if now is None else now
    c = s.config
    label = s.state.replace("_", "-")
    if s.state == "open":
        when = s.half_open_at or now
        detail = (f"{s.consecutive_failures} consecutive failure(s); "
                  + (f"half-opens at {iso(when)}, in {when - now:.1f} s" if when > now else "half-opens on the next call"))
    elif s.state == "half_open":
        detail = f"{len(s.permits)} probe(s) under way, {s.probe_successes} of {c.half_open_requests} passed"
    else:
        detail = f"{s.consecutive_failures} of {c.failure_threshold} failures"
    last = f" — last failure: {escape(s.last_failure)}" if s.last_failure and s.state != "closed" else ""
    config = f"threshold {c.failure_threshold}, reset {c.reset_timeout_seconds:g} s, half-open {c.half_open_requests}"
    t = s.totals
    return (f"[bold]{escape(s.name)}[/bold] [{_STYLE[s.state]}]{label}[/{_STYLE[s.state]}] ({escape(detail)}){last} "
            f"[dim]{config}; {t.successes} ok, {t.failures} failed, opened {t.opened}x[/dim]")
