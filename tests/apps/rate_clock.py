"""When the rate-limited model calls of tests/test_budgets.py reach the (scripted) provider.
Imported passed through the workflow sandbox, so the test and every copy of budget_app
share this list (see docs/api.md, the mock model row)."""

CALLS: list[float] = []
