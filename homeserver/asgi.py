"""ASGI entry point served by uvicorn (see `palisade serve`).

Matrix paths go to the lean MatrixASGIHandler (homeserver/api/asgi_handler.py); the admin and
the OIDC pages to Django's stock handler with the full middleware list.
"""

import os
import sys

from django.core.asgi import get_asgi_application

# Each worker runs up to ~16 request threads. One coming back from PostgreSQL, often holding a
# room lock and the stream-position lock until its COMMIT, waits for the GIL while the others
# run Python: up to the switch interval (5 ms by default) after every round trip, which then
# stretches how long everyone else queues on those locks. 0.5 ms: bench/load throughput
# 31 -> 39 msg/s and 21-22 -> 33 msg/s in back-to-back runs (docs/benchmarks.md).
sys.setswitchinterval(0.0005)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "homeserver.settings")

django_application = get_asgi_application()  # calls django.setup()

from homeserver.api.asgi_handler import MatrixASGIHandler, matrix_router  # noqa: E402

matrix_handler = MatrixASGIHandler()
application = matrix_router(matrix_handler, django_application)
