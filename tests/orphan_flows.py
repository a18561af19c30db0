"""A standalone workflow whose agent no worker has (tests/test_orchestration_definitions.py).
Not under tests/apps: the session worker must not load it."""

from lmthing import def_workflow, step

orphan = def_workflow("orphan_flow", [step("a", agent="no_such_prompt")])
