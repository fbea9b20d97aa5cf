"""The browser tests' fixtures. (The log capture that covers the e2e tests covers the whole run:
tests/conftest.py.)"""

from tests.support.browser import browser, chromium  # noqa: F401 (the browser tests' fixtures)
