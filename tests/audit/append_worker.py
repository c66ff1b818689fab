"""A separate OS process appending to the audit chain (used by test_concurrency.py).

    python -m tests.audit.append_worker WORKER_ID COUNT GO_FILE
Waits for GO_FILE to exist so all workers start together, then appends COUNT records, each in
its own transaction.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main() -> int:
    worker, count, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "homeserver.settings")
    import django

    django.setup()
    from django.db import transaction

    from audit.actions import AuditAction
    from audit.log import record

    deadline = time.monotonic() + 60
    while not go.exists():
        if time.monotonic() > deadline:
            return 2
        time.sleep(0.01)
    for i in range(count):
        with transaction.atomic():
            record(AuditAction.MEMBERSHIP_CHANGED, actor=f"worker-{worker}",
                   details={"worker": worker, "i": i})
    return 0


if __name__ == "__main__":
    sys.exit(main())
