"""Pure Matrix protocol logic: no Django, no ORM, no I/O.

Everything here is a function of its inputs and is tested against the spec's own vectors
(see tests/protocol). An import-linter contract in pyproject.toml keeps Django out.
"""
