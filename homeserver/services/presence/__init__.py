"""Presence: online/unavailable/offline and status messages of local users."""
