"""An MCP server's tools as the model's tools, offline on a scripted model.

    lmthing run examples/mcp_tools.py

What it shows (docs/mcp.md):

* ``mcp_server(...)`` declares a stdio server (examples/mcp_weather_server.py, written with
  the ``mcp`` SDK); ``await p.def_mcp_server(WEATHER, prefix="weather_")`` gives the model
  its tools, named ``weather_forecast`` and ``weather_to_fahrenheit``;
* the worker starts the server's process on first use, asks it for its tools once, and
  keeps the session for every call (each call is an ``lmthing.mcp.call_tool`` activity);
  the process is stopped when the worker stops;
* a tool's error (an unknown city) reaches the model as a tool error, and the run goes on.

``python`` in the command is the worker's own interpreter; the path is relative to the
directory the worker runs in (here the repository root).
"""

from __future__ import annotations

from lmthing import mcp_server, prompt
from lmthing.testing import scripted_model, text, tool_call

WEATHER = mcp_server("weather", ["python", "examples/mcp_weather_server.py"])

SCRIPT = [
    [tool_call("weather_forecast", {"city": "Oslo"}), tool_call("weather_forecast", {"city": "Atlantis"})],
    tool_call("weather_to_fahrenheit", {"celsius": 4}),
    text("Oslo tomorrow: 4 °C (39.2 °F) and light snow. I have no forecast for Atlantis."),
]


@prompt(model=scripted_model("mcp-example", SCRIPT), max_steps=5)
async def weather_desk(p) -> None:
    """Answer questions about tomorrow's weather with the weather server's tools."""
    await p.def_mcp_server(WEATHER, prefix="weather_")
    p.def_system("role", "You answer weather questions. Use the tools for facts.")
    p.user("What is the weather in Oslo and in Atlantis tomorrow, in Fahrenheit too?")
