"""Protocol tests need no database: they exercise pure functions on spec vectors."""
