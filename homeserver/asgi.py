"""ASGI entry point served by uvicorn (see `palisade serve`)."""

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

application = get_asgi_application()
