"""manage.py create_user <localpart> [--password PW | --password-file FILE] [--admin]

Creates a local account (audited as created by the operator). Without --password or
--password-file the password is asked for twice on the terminal; `--password-file -` reads it
from standard input (first line), which keeps it out of the process list and shell history.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.actions import ActorType
from homeserver.protocol.errors import MatrixError
from homeserver.services.accounts.register import create_user


class Command(BaseCommand):
    help = "Create a local user account."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("localpart", help="the user name, e.g. alice for @alice:server")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--password", help="the password (visible in the process list)")
        source.add_argument("--password-file", help="read the password from this file ('-': stdin)")
        parser.add_argument("--admin", action="store_true", help="make the user a server admin")
        parser.add_argument("--displayname", default=None)

    def _password(self, options: dict[str, Any]) -> str:
        if options["password"] is not None:
            return options["password"]
        if options["password_file"] is not None:
            name = options["password_file"]
            try:
                text = sys.stdin.readline() if name == "-" else Path(name).read_text("utf-8")
            except OSError as e:
                raise CommandError(f"cannot read {name}: {e.strerror}") from None
            password = text.splitlines()[0] if text.splitlines() else ""
            if not password:
                raise CommandError(f"{name} holds no password")
            return password
        if not sys.stdin.isatty():
            raise CommandError("no terminal to ask for a password: use --password-file")
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("passwords do not match")
        return first

    def handle(self, *args: Any, **options: Any) -> None:
        password = self._password(options)
        try:
            user_id, _ = create_user(
                options["localpart"], password=password, is_admin=options["admin"],
                displayname=options["displayname"], actor="manage.py create_user",
                actor_type=ActorType.SYSTEM, method="management_command",
            )
        except MatrixError as e:
            raise CommandError(f"{e.errcode}: {e.error}") from None
        kind = "admin user" if options["admin"] else "user"
        self.stdout.write(f"created {kind} {user_id}")
