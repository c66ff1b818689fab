"""The only code that queries the database."""


def placeholders(n: int) -> str:
    """n SQL parameter placeholders, for an IN list or a multi-row VALUES (the values always go
    as parameters, never into the SQL text)."""
    return ", ".join(["%s"] * n)
