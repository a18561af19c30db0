"""The local web server's URLs for tests/test_domains.py. Imported passed through the
workflow sandbox, so the test and every copy of domains_app share this dict."""

URLS: dict[str, str] = {}
