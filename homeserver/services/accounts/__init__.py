"""Accounts and sessions: registration, login, devices, tokens, profiles, account data."""
