"""Federation tests share the client-API fixtures (test settings, connection cleanup)."""

from tests.accounts.conftest import (  # noqa: F401 - fixtures are registered by import
    accounts_settings,
    api,
    close_thread_connections,
    stream_counter_row,
)
