"""The process-wide state-group cache (homeserver/storage/state.py): bounded by groups and by
state entries, least recently used out first, safe to use from the database threads at once."""

from __future__ import annotations

import threading

import pytest

from homeserver.storage import state as state_store


@pytest.fixture(autouse=True)
def empty_cache(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(state_store, "_group_cache", state_store.OrderedDict())
    monkeypatch.setattr(state_store, "_cache_entries", 0)


def members(n: int) -> dict:
    return {("m.room.member", f"@u{i}:hs"): f"$e{i}" for i in range(n)}


def test_a_few_huge_groups_evict_by_entries_not_by_count(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(state_store, "_CACHE_ENTRIES", 10_000)
    for group in range(1, 4):  # three groups of a 4,000-member room: 12,000 entries
        state_store._cache_put(group, members(4000))
    assert state_store._cache_get(1) is None  # the oldest went to stay under 10,000
    assert state_store._cache_get(2) is not None and state_store._cache_get(3) is not None
    assert state_store._cache_entries == 8000


def test_least_recently_used_goes_first(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(state_store, "_CACHE_SIZE", 2)
    state_store._cache_put(1, members(1))
    state_store._cache_put(2, members(1))
    assert state_store._cache_get(1) is not None  # 1 is now the most recent
    state_store._cache_put(3, members(1))
    assert state_store._cache_get(2) is None
    assert state_store._cache_get(1) is not None and state_store._cache_get(3) is not None


def test_one_group_larger_than_the_bound_is_still_cached(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(state_store, "_CACHE_ENTRIES", 10)
    state_store._cache_put(1, members(50))
    assert state_store._cache_get(1) == members(50)


def test_concurrent_readers_and_writers_never_fail(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(state_store, "_CACHE_SIZE", 8)
    errors: list[BaseException] = []

    def churn(offset: int) -> None:
        try:
            for i in range(3000):
                state_store._cache_put(offset + i % 20, members(2))
                state_store._cache_get(offset + (i * 7) % 20)
        except BaseException as e:  # any failure fails the test below
            errors.append(e)

    threads = [threading.Thread(target=churn, args=(0,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(state_store._group_cache) <= 8
    assert state_store._cache_entries == sum(len(s) for s in state_store._group_cache.values())
