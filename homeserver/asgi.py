"""ASGI entry point served by uvicorn (see `palisade serve`)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "homeserver.settings")

application = get_asgi_application()
