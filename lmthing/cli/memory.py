"""``lmthing memory list | show | search | forget``: what agents remember, for an operator
(docs/memory-stores.md). Works on a memory store URL directly (``--store``, default
``$LMTHING_MEMORY_URL``, else ``sqlite:///.lmthing/memory.db``), through the same
:class:`~lmthing.activities.stores.base.Store` the workers use; no Temporal server needed.

A store's errors (a bad URL, a server that does not answer) are one line and exit code 2.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape

from .common import CliError, _execute, app, console

if TYPE_CHECKING:
    from lmthing.activities.stores.base import Store
    from lmthing.memory.types import MemoryRecord

T = TypeVar("T")
SHOWN_TEXT = 100  # characters of a record's text on a list or search line
COUNT_UP_TO = 1000  # records counted when forget asks for --yes on a scope in every namespace

memory_app = typer.Typer(
    help="What agents remember: list, show, search and forget the records of a memory store.",
    no_args_is_help=True,
)
app.add_typer(memory_app, name="memory")

StoreOption = Annotated[str | None, typer.Option(
    "--store", help="Memory store URL (default: $LMTHING_MEMORY_URL, else sqlite:///.lmthing/memory.db).")]
MemoryNamespaceOption = Annotated[str | None, typer.Option("--namespace", "-n", help="Memory namespace (a def_memory name).")]
ScopeOption = Annotated[str | None, typer.Option(
    "--scope", "-s", help='Scope: "global", "agent:<name>", "session:<id>" or "run:<workflow id>".')]
KindOption = Annotated[str | None, typer.Option("--kind", "-k", help="Record kind: kv, vector, episodic, belief, state, cache.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (machine-readable).")]


def _with_store(url: str | None, use: Callable[[Store], Awaitable[T]], check: Callable[[], None] | None = None) -> T:
    """``check`` the options, open the store, run ``use`` on it, close it; mistakes and
    store errors are one-line CLI errors."""

    async def go() -> T:
        from lmthing.activities.stores.base import default_store_url, open_store
        from lmthing.memory.types import MemoryStoreError, MemoryStoreUnavailable

        if check is not None:
            check()
        if url is not None and not url.strip():
            raise CliError("--store is empty; give a store URL or leave the option out", code=2)
        try:
            store = open_store(url or default_store_url())
            try:
                return await use(store)
            finally:
                await store.close()
        except (MemoryStoreError, MemoryStoreUnavailable) as err:
            raise CliError(str(err), code=2) from None

    return _execute(go)


def _checks(kind: str | None, limit: int) -> Callable[[], None]:
    def check() -> None:
        from lmthing.memory.types import RECORD_KINDS

        if kind is not None and kind not in RECORD_KINDS:
            raise CliError(f"--kind {kind!r} is not a record kind; use one of {', '.join(RECORD_KINDS)}", code=2)
        if limit < 1:
            raise CliError(f"--limit must be 1 or more (got {limit})", code=2)

    return check


def iso(ts: float | None) -> str:
    return "-" if not ts else datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SHOWN_TEXT else flat[: SHOWN_TEXT - 1] + "…"


def _line(r: MemoryRecord, score: float | None = None) -> str:
    head = f"[yellow]{score:.3g}[/yellow] " if score is not None else ""
    text = escape(_short(r.text)) if r.text else f"[dim]{escape(_short(json.dumps(r.value, ensure_ascii=False)))}[/dim]"
    return (f"{head}[bold]{escape(r.namespace)}[/bold] {escape(r.scope)} [cyan]{escape(r.key)}[/cyan] {r.kind} "
            f"[dim]{iso(r.updated_at)}[/dim]  {text}")


def _print_json(data: Any) -> None:
    console.print_json(json.dumps(data, ensure_ascii=False))


@memory_app.command("list")
def memory_list(
    namespace: MemoryNamespaceOption = None,
    scope: ScopeOption = None,
    kind: KindOption = None,
    limit: Annotated[int, typer.Option(help="At most this many records, newest first.")] = 50,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """The namespaces with their record counts; with --namespace (or --scope / --kind), its records, newest first."""

    async def use(s: Store) -> None:
        if namespace is None and scope is None and kind is None:
            spaces = await s.namespaces()
            if as_json:
                _print_json(spaces)
            elif not spaces:
                console.print(f"No memories in {escape(_where(s))}.")
            for n in [] if as_json else spaces:
                vectors = f"; embeddings {n['embedding_model'] or 'unnamed model'} ({n['dimensions']} dims)" if n["dimensions"] else ""
                console.print(f"[bold]{escape(str(n['namespace']))}[/bold] {n['records']} record(s) in {n['scopes']} scope(s); "
                              f"kinds {', '.join(n['kinds'])}{vectors}; updated [dim]{iso(n['updated_at'])}[/dim]")
            return
        records = await s.list(namespace=namespace, scope=scope, kind=kind, limit=limit)
        if as_json:
            _print_json([r.model_dump(mode="json") for r in records])
            return
        if not records:
            console.print("No records match.")
        for r in records:
            console.print(_line(r))

    _with_store(store, use, _checks(kind, limit))


@memory_app.command("show")
def memory_show(
    namespace: Annotated[str, typer.Argument(help="Memory namespace.")],
    key: Annotated[str, typer.Argument(help="Record key.")],
    scope: Annotated[str, typer.Option("--scope", "-s", help="The record's scope.")] = "global",
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """One record, all of it."""

    async def use(s: Store) -> None:
        r = await s.get(namespace, scope, key)
        if r is None:
            raise CliError(f"No record {key!r} in memory namespace {namespace!r}, scope {scope!r} (give its --scope; "
                           f"`lmthing memory list --namespace {namespace}` lists the records)", code=2)
        if as_json:
            _print_json(r.model_dump(mode="json"))
            return
        console.print(f"[bold]{escape(r.namespace)}[/bold] {escape(r.scope)} [cyan]{escape(r.key)}[/cyan] ({r.kind})")
        console.print(f"  created {iso(r.created_at)}, updated {iso(r.updated_at)}, "
                      f"expires {iso(r.expires_at) if r.expires_at else 'never'}")
        if r.dimensions:
            console.print(f"  embedding: {escape(r.embedding_model or 'unnamed model')}, {r.dimensions} dimensions")
        if r.text:
            console.print(f"  text: {escape(r.text)}")
        value = json.dumps(r.value, ensure_ascii=False, indent=2)
        console.print(f"  value: {escape(value)}" if "\n" not in value else "  value:\n" + escape(textwrap.indent(value, "    ")))
        if r.metadata:
            console.print(f"  metadata: {escape(json.dumps(r.metadata, ensure_ascii=False))}")

    _with_store(store, use)


@memory_app.command("search")
def memory_search(
    namespace: Annotated[str, typer.Argument(help="Memory namespace.")],
    text: Annotated[str, typer.Argument(help="Words to look for (any of them; best matches first).")],
    scope: ScopeOption = None,
    kind: KindOption = None,
    limit: Annotated[int, typer.Option(help="At most this many hits.")] = 10,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Keyword search of one namespace (full-text rank; every scope unless --scope)."""

    async def use(s: Store) -> None:
        hits = await s.search(namespace, scope, text=text, limit=limit, kind=kind)
        if as_json:
            _print_json([{"score": h.score, "record": h.record.model_dump(mode="json")} for h in hits])
            return
        if not hits:
            console.print(f"Nothing in {escape(namespace)} matches {escape(repr(text))}.")
        for h in hits:
            console.print(_line(h.record, h.score))

    _with_store(store, use, _checks(kind, limit))


@memory_app.command("forget")
def memory_forget(
    namespace: MemoryNamespaceOption = None,
    scope: ScopeOption = None,
    key: Annotated[str | None, typer.Option("--key", help="One record's key.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Confirm deleting a whole namespace or a scope everywhere.")] = False,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Delete records: one (--namespace N --scope S --key K), a scope of a namespace, a whole namespace (--yes), or a scope in every namespace (--yes)."""
    def check() -> None:
        if namespace is None and scope is None:
            raise CliError("forget needs --namespace or --scope (or both), e.g. lmthing memory forget --namespace notes "
                           "--scope global --key colour", code=2)

    broad = None
    if namespace is not None and scope is None and key is None:
        broad = f"every record of namespace {namespace!r}"
    elif namespace is None and key is None:
        broad = f"every record of scope {scope!r} in every namespace"

    async def use(s: Store) -> None:
        if broad and not yes:
            if namespace is not None:
                count = str(sum(int(n["records"]) for n in await s.namespaces() if n["namespace"] == namespace))  # type: ignore[call-overload]
            else:
                found = len(await s.list(scope=scope, limit=COUNT_UP_TO))
                count = f"{found}{' or more' if found == COUNT_UP_TO else ''}"
            raise CliError(f"This deletes {broad} ({count} record(s) now); add --yes to go ahead", code=2)
        deleted = await s.delete(namespace, scope, key)
        if as_json:
            _print_json({"deleted": deleted})
        else:
            console.print(f"Deleted {deleted} record(s).")

    _with_store(store, use, check)


def _where(s: Store) -> str:
    from lmthing.activities.stores.base import redact_url

    return redact_url(s.url)
