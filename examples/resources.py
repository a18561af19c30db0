"""Worker-side resources for @tool activities, offline on a scripted model.

    lmthing run examples/resources.py

What it shows (docs/resources.md):

* ``def_resource`` (``catalog``): a product index loaded once per worker on first use (a
  stand-in for a model or a big client), shared by every tool call of every run;
* ``def_resource_pool`` (``orders_db``): up to two SQLite connections, each lent to one tool
  call at a time (``with ctx.acquire(...)``), checked with ``SELECT 1`` before it is lent,
  and closed when the worker shuts down (the ``closed`` lines after the run).

Resources never enter the workflow or its history: they are declared here at module level,
beside the tools, and the worker that loads this file makes them.
"""

from __future__ import annotations

from typing import Any

from lmthing import ToolContext, def_resource, def_resource_pool, prompt, tool
from lmthing.testing import scripted_model, text, tool_call

ORDERS = [("A-1", "shipped"), ("A-2", "delivered")]


def load_catalog() -> dict[str, dict]:
    """Loaded once per worker, the first time a tool asks for it."""
    products = {"kettle": {"sku": "K-100", "price": 39.0}, "mug": {"sku": "M-200", "price": 9.5}}
    print(f"catalog: loaded {len(products)} products (once per worker)", flush=True)
    return products


def connect() -> Any:
    """One pooled connection (sync: run in a thread, like the tool that uses it). I/O modules
    are imported here, on the worker: the workflow sandbox re-imports this module per run."""
    import sqlite3
    import tempfile
    from pathlib import Path

    conn = sqlite3.connect(Path(tempfile.gettempdir()) / "lmthing-example-orders.db", check_same_thread=False)
    conn.execute("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, status TEXT)")
    conn.executemany("INSERT OR IGNORE INTO orders VALUES (?, ?)", ORDERS)
    conn.commit()
    return conn


def ping(conn: Any) -> bool:
    return conn.execute("SELECT 1").fetchone() == (1,)


def close(conn: Any) -> None:
    conn.close()
    print("orders_db: closed a connection", flush=True)


catalog = def_resource("catalog", init=load_catalog)
orders_db = def_resource_pool("orders_db", factory=connect, min=1, max=2, acquire_timeout=5,
                              health_check=ping, cleanup=close)


@tool
async def find_product(name: str, ctx: ToolContext) -> dict:
    """Find a product in the catalog by name."""
    products = await ctx.resource("catalog")
    return products.get(name) or {"error": f"no product named {name!r}"}


@tool
def order_status(order_id: str, ctx: ToolContext) -> dict:
    """Look an order up in the orders database."""
    with ctx.acquire("orders_db") as conn:
        row = conn.execute("SELECT status FROM orders WHERE id = ?", (order_id,)).fetchone()
    return {"order_id": order_id, "status": row[0] if row else "unknown"}


SCRIPT = [
    [tool_call("find_product", {"name": "kettle"}), tool_call("order_status", {"order_id": "A-1"}),
     tool_call("order_status", {"order_id": "A-2"})],
    [tool_call("find_product", {"name": "mug"})],
    text("A-1 has shipped and A-2 was delivered; the kettle is 39.00 and a mug 9.50."),
]


@prompt(model=scripted_model("resources-example", SCRIPT), max_steps=5)
def shop_assistant(p) -> None:
    """Answer questions about orders and products."""
    p.def_tool(find_product)
    p.def_tool(order_status)
    p.def_system("role", "You are a shop assistant. Use the tools for facts.")
    p.user("Where are my orders A-1 and A-2, and what do a kettle and a mug cost?")
