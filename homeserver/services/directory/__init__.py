"""Directory and conveniences (issue 5): room aliases, the published room directory, the user
directory, room tags, OpenID tokens and TURN credentials."""
