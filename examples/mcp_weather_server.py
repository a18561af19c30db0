"""A small MCP server written with the ``mcp`` SDK (MCPServer), for examples/mcp_tools.py.

    python examples/mcp_weather_server.py              # over stdio (what the example runs)

Any MCP server works the same way: ``npx -y @modelcontextprotocol/server-filesystem /data``,
a ``uvx`` one, or a streamable HTTP endpoint (``url="http://.../mcp"``).
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("weather")

FORECASTS = {"oslo": (4, "light snow"), "lima": (22, "overcast"), "cairo": (30, "sunny")}


@server.tool()
def forecast(city: str) -> dict:
    """Tomorrow's forecast for a city: temperature in Celsius and the sky."""
    found = FORECASTS.get(city.lower())
    if found is None:
        raise ToolError(f"no forecast for {city!r}; known cities: {', '.join(sorted(FORECASTS))}")
    return {"city": city, "celsius": found[0], "sky": found[1]}


@server.tool()
def to_fahrenheit(celsius: float) -> float:
    """Convert Celsius to Fahrenheit."""
    return round(celsius * 9 / 5 + 32, 1)


if __name__ == "__main__":
    server.run()
