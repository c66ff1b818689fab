"""Push rule evaluation cost per room member: what one message costs the send path in CPU
(services/push/evaluate.py evaluates every local member but the sender, in the event's
transaction). Pure Python, no database: homeserver/protocol/push_rules.py alone.

    .venv/bin/python bench/bench_push_eval.py [--members 100 1000 10000]

Cases: a message carrying m.mentions (what current clients send: the legacy body rules are
skipped), one without (the legacy display-name rule looks names up), and a room where 5% of
the members have rules of their own (their ruleset is merged per event).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from homeserver.protocol.push_rules import evaluate
from homeserver.protocol.push_rules_bulk import evaluate_prepared, prepare
from homeserver.protocol.push_rules_defaults import merged_ruleset
from homeserver.protocol.push_rules_edit import parse_rule_body, put_rule

ROOM = "!bench:example.org"


class Ctx:
    def __init__(self, n: int) -> None:
        self.member_count = n
        self.names = {f"@user{i}:example.org": f"User {i}" for i in range(n)}

    def display_name(self, user_id: str) -> str | None:
        return self.names.get(user_id)

    def sender_power_level(self) -> int:
        return 0

    def notification_level(self, key: str) -> int:
        return 50


def run(n: int, event: dict, custom_share: float) -> float:
    users = [f"@user{i}:example.org" for i in range(n)]
    own = put_rule(None, "content", parse_rule_body("content", "cake", {
        "pattern": "cake", "actions": ["notify"]}), None, None)
    stored = {u: own for i, u in enumerate(users) if custom_share and i % int(1 / custom_share)
              == 0}
    default = merged_ruleset(None, None)
    ctx, cache = Ctx(n), {}
    t0 = time.perf_counter()
    prepared = prepare(default, event, ctx, cache)  # as services/push/evaluate.py does
    for u in users:
        if u in stored:
            evaluate(merged_ruleset(None, stored[u]), event, u, ctx, cache)
        else:
            evaluate_prepared(prepared, event, u, ctx, cache)
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    plain = {"type": "m.room.message", "room_id": ROOM, "sender": "@sender:example.org",
             "content": {"msgtype": "m.text", "body": "Bed 4 needs a review before noon."}}
    mentions = {**plain, "content": {**plain["content"], "m.mentions": {}}}
    print(f"(best of {args.repeat} runs each; load average {os.getloadavg()[0]:.1f})")
    for n in args.members:
        a = min(run(n, mentions, 0) for _ in range(args.repeat))
        b = min(run(n, plain, 0) for _ in range(args.repeat))
        c = min(run(n, mentions, 0.05) for _ in range(args.repeat))
        print(f"{n:>6} members: {a:6.1f} us/member with m.mentions, {b:6.1f} without, "
              f"{c:6.1f} with 5% custom rules -> {a * n / 1000:7.1f} ms per message")


if __name__ == "__main__":
    main()
