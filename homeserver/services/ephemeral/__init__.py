"""Ephemeral room data: typing notifications, receipts and read markers, and their /sync
sections."""
