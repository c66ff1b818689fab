"""Typing, receipts and presence tests share the accounts tests' fixtures (test settings, the
JSON `api` client, thread-connection cleanup)."""

from tests.accounts.conftest import (  # noqa: F401 - fixtures are registered by import
    accounts_settings,
    api,
    close_thread_connections,
    stream_counter_row,
)
