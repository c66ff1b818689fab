"""Summarise a py-spy `--format raw` profile (collapsed stacks) into hotspot tables.

    .venv/bin/python bench/load/hotspots.py bench/results/profile-palisade-*.txt [--top 25]

Tables: (1) deepest frame in Palisade's own code (homeserver/, compliance/, audit/, idp/) with
file:line, i.e. which line of ours the samples were spent under, library calls included;
(2) inclusive time per Palisade function; (3) self time per frame anywhere (library leaves).
Sample counts are py-spy's (idle threads excluded unless it was run with --idle).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

OWN = ("homeserver/", "compliance/", "audit/", "idp/")
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def parse(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for raw in path.read_text(errors="replace").splitlines():
        stack, _, count = raw.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";")
                  if not f.startswith(("process ", "thread ")) and f]
        stacks.append((frames, int(count)))
    return stacks


def own(frame: str) -> bool:
    m = FRAME.match(frame)
    return bool(m) and m["file"].startswith(OWN)


def func_of(frame: str) -> str:
    m = FRAME.match(frame)
    return f"{m['func']} ({m['file']})" if m else frame


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("profile", nargs="+")
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args()
    stacks = [s for path in a.profile for s in parse(Path(path))]
    total = sum(c for _, c in stacks)
    deepest_own: Counter[str] = Counter()
    inclusive_own: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    for frames, c in stacks:
        if frames:
            leaf[frames[-1]] += c
        ours = [f for f in frames if own(f)]
        deepest_own[ours[-1] if ours else "(outside Palisade code: server loop, idle, ...)"] += c
        for fn in {func_of(f) for f in ours}:
            inclusive_own[fn] += c

    def table(title: str, counter: Counter[str]) -> None:
        print(f"\n{title}")
        for name, c in counter.most_common(a.top):
            print(f"  {100 * c / total:5.1f}%  {c:7d}  {name}")

    print(f"{total} samples in {', '.join(a.profile)}")
    table("Deepest Palisade frame (file:line), library time below it included:", deepest_own)
    table("Inclusive, per Palisade function:", inclusive_own)
    table("Self time per frame (leaf), any code:", leaf)


if __name__ == "__main__":
    main()
