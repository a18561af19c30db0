"""When the rate-limited model calls of tests/test_budgets.py reach the (scripted) provider.
Imported passed through the workflow sandbox, so the test and every copy of budget_app
share this list (see docs/api.md, the mock model row), and ``record`` reads the real clock:
a script registered by a copy of budget_app imported inside the sandbox would otherwise call
the sandbox's restricted ``time.time``, fail the model activity and take a second slot."""

import time

CALLS: list[float] = []


def record() -> None:
    CALLS.append(time.time())
