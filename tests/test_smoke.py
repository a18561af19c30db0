from tests.apps import basics
from tests.support import run


async def test_hello_runs_as_workflow(client, worker):
    result, steps = await run(client, basics.hello)
    assert result.text == "Hello, Ann!"
    assert result.stop_reason == "answer"
    assert steps[0].request.system == "<role>\nYou are a helpful assistant.\n</role>"
