"""The orchestration examples run as a user runs them: `lmthing run FILE.py` (a subprocess
with its embedded server), and the standalone code-review workflow type on a worker."""

from __future__ import annotations

import asyncio
import json
import re
import sys

from temporalio.client import Client

from lmthing.client import run_orchestration
from lmthing.workers import create_worker
from tests.support import cli_env, new_id
from tests.test_cli import ROOT, lmthing


def final_state(out: str) -> dict:
    found = re.search(r"^State: (.*)$", out, re.M)
    assert found, out
    return json.loads(found.group(1))


async def test_the_code_review_example_runs_the_workflow_of_the_spec() -> None:
    done = await lmthing("run", "examples/code_review.py")
    assert done.code == 0, done.err
    assert "The review scored the code 5/10; two patches were suggested and applied." in done.out
    assert "sub-agent code_analyzer is running as a child workflow" in done.out
    review = final_state(done.out)["_lmthing_runs"]["workflow:review:default"]["result"]
    assert [(r["step"], r["status"]) for r in review["runs"]] == [("analyze", "ok"), ("check_quality", "ok"), ("apply_fixes", "ok")]
    assert review["output"] == {"applied": 2}


async def test_the_consensus_example_agrees_across_three_models() -> None:
    done = await lmthing("run", "examples/consensus.py")
    assert done.code == 0, done.err
    agreed = final_state(done.out)["_lmthing_runs"]["parallel:multi_model_consensus:default"]["result"]
    assert agreed["aggregation"] == "consensus" and agreed["groups"] == [["gpt", "claude", "gemini"]]
    assert "All three models agree" in done.out


async def test_the_standalone_code_review_flow(client: Client) -> None:
    from examples import code_review_flow

    queue = new_id("code-review-flow")
    async with create_worker(client, app="examples.code_review_flow", task_queue=queue):
        result = await run_orchestration(client, code_review_flow.code_review_flow, {"files": ["api.py"]},
                                         id=new_id("review"), task_queue=queue)
    assert [r.step for r in result.runs] == ["analyze", "check_quality", "apply_fixes"]
    assert result.output == {"applied": 1}


async def test_the_guarded_support_example_retries_guards_filters_and_validates() -> None:
    done = await lmthing("run", "examples/guarded_support.py")
    assert done.code == 0, done.err
    assert '"skipped": true, "guard": "verified"' in done.out  # the first refund waited for verification
    assert '"refunded": 42.0' in done.out
    assert "4111" not in done.out  # the card number never reached the screen
    assert "output filtered by moderation 'pii' (card_number)" in done.out
    # The first answer did not name the order: the validator asked for another.
    assert "Order A-17 is refunded: 42.00 goes back to card ending 1111 within five days." in done.out
    assert "6 step(s), stop reason: answer" in done.out


async def test_the_resources_example_loads_once_and_closes_the_pool_at_shutdown() -> None:
    done = await lmthing("run", "examples/resources.py")
    assert done.code == 0, done.err
    assert done.out.count("catalog: loaded 2 products") == 1  # two find_product calls, one load
    assert '"status": "shipped"' in done.out and '"status": "delivered"' in done.out
    assert '"price": 9.5' in done.out
    # The pool lent at most two connections; each one made is closed when the worker stops,
    # which `lmthing run` does before it prints the answer.
    closed = done.out.count("orders_db: closed a connection")
    assert 1 <= closed <= 2 and done.out.index("orders_db: closed") < done.out.index("Answer")


async def test_the_memory_example_remembers_its_guest_across_runs(tmp_path) -> None:
    store = {"LMTHING_MEMORY_URL": f"sqlite:///{tmp_path / 'memory.db'}"}
    runs = []
    for request in ("a quiet room, please", "book me dinner", "a quiet breakfast"):
        done = await lmthing("run", "examples/memory_agent.py", "--session", "guest-42",
                             "--input", json.dumps({"request": request}), **store)
        assert done.code == 0, done.err
        runs.append(done.out)
    first, second, third = runs
    assert "hotel system: asked for the quiet floor" in first
    assert "hotel system" not in second and "hotel system" not in third  # answered by the cache
    # What the model stored in the first run (its guest_remember tool), read in the next ones.
    assert "room: quiet, high floor visit: 2" in second and "light_sleeper: 0.75" in second
    assert "light_sleeper: 0.9" in third  # two requests for quiet: odds 9 to 1
    assert "'earlier: visit 1: asked for a quiet room, please; visit 2: asked for book me dinner'" in third
    other = await lmthing("run", "examples/memory_agent.py", "--session", "guest-7",
                          "--input", json.dumps({"request": "book me dinner"}), **store)
    assert "room: null visit: 1" in other.out  # another session knows nothing of guest 42


async def test_the_long_chat_example_stays_inside_its_context_window() -> None:
    done = await lmthing("run", "examples/long_chat_context.py")
    assert done.code == 0, done.err
    # 31 model calls over 61 messages; the last one received the task, a summary and the newest turns.
    assert "All 30 sensors are read" in done.out and "31 step(s), stop reason: answer" in done.out
    found = re.search(r"This call received (\d+) messages: the readings up to S-(\d+) came as a summary", done.out)
    assert found and int(found.group(1)) < 30 and int(found.group(2)) >= 10, done.out


async def test_the_roles_example_limits_tools_and_fills_its_template() -> None:
    done = await lmthing("run", "examples/roles_and_templates.py", "--input", json.dumps({"code": "def add(a, b): return a - b"}))
    assert done.code == 0, done.err
    assert "Offered tools: ['read_guidelines']" in done.out
    assert "The guidelines say: names say what things do" in done.out
    assert "Publishing was refused" in done.out and "published" not in done.out.split("Answer")[-1]
    assert "Verdict: `a - b` should be `a + b`." in done.out


async def test_the_builtin_tools_example_writes_reads_and_sums_inside_its_workspace() -> None:
    done = await lmthing("run", "examples/builtin_tools.py")
    assert done.code == 0, done.err
    assert '"path": "report/sales.csv"' in done.out and '"result": 242.75' in done.out
    assert "'../escape.txt' is outside the files root" in done.out  # the refusal reached the model
    assert '"matches": ["report/sales.csv"]' in done.out and '"slug": "q3-sales-report"' in done.out
    assert "Q3 sales came to 242.75 over 91 days" in done.out


async def test_the_mcp_example_uses_a_stdio_servers_tools() -> None:
    done = await lmthing("run", "examples/mcp_tools.py")
    assert done.code == 0, done.err
    assert '"sky": "light snow"' in done.out and "39.2" in done.out
    assert "no forecast for 'Atlantis'" in done.out  # the tool's error, read by the model
    assert "Oslo tomorrow: 4 °C (39.2 °F) and light snow." in done.out


async def test_the_mcp_serve_example_runs_the_research_agent_through_an_mcp_client() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "examples/mcp_serve_client.py", cwd=ROOT, env=cli_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    text = out.decode()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert "tools: research" in text and "progress: step 1: sub-agent summarizer started" in text
    assert "answer: Running an agent as a durable Temporal workflow" in text
    assert re.search(r"workflow id: research-[0-9a-f]+", text)
