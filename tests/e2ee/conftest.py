"""E2EE tests share the accounts tests' fixtures: test settings, thread-connection cleanup and
the JSON `api` client."""

from tests.accounts.conftest import (  # noqa: F401 - fixtures are registered by import
    accounts_settings,
    api,
    close_thread_connections,
    stream_counter_row,
)
