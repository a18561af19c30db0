"""Model calls that reached the scripted provider in tests/test_cache.py (the questions
asked). Imported passed through the workflow sandbox, so the test and every copy of
cache_app share this list."""

ASKED: list[str] = []
