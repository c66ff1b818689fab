"""The pure push rule evaluator, default ruleset and rule edits, on the spec's own examples.

Spec: client-server API "Push Notifications" (conditions, predefined rules, push rules API)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from homeserver.protocol.errors import MatrixError
from homeserver.protocol.push_rules import (
    condition_matches,
    evaluate,
    glob_matches,
    highlights,
    notifies,
    split_path,
    tweaks,
)
from homeserver.protocol.push_rules_defaults import (
    client_ruleset,
    default_ruleset,
    merged_ruleset,
)
from homeserver.protocol.push_rules_edit import (
    delete_rule,
    get_rule,
    parse_rule_body,
    put_rule,
    set_actions,
    set_enabled,
)

ALICE = "@alice:example.org"
BOB = "@bob:example.org"
ROOM = "!room:example.org"


@dataclass
class Ctx:
    member_count: int = 5
    names: dict[str, str] = field(default_factory=dict)
    sender_level: int = 0
    room_level: int = 50
    lookups: int = 0

    def display_name(self, user_id: str) -> str | None:
        self.lookups += 1
        return self.names.get(user_id)

    def sender_power_level(self) -> int:
        return self.sender_level

    def notification_level(self, key: str) -> int:
        return self.room_level


def msg(body: str = "hello", **content) -> dict:
    return {"type": "m.room.message", "room_id": ROOM, "sender": BOB,
            "content": {"msgtype": "m.text", "body": body, **content}}


def run(event, user=ALICE, ctx=None, stored=None):
    return evaluate(merged_ruleset(None, stored), event, user, ctx or Ctx())


# --- conditions -----------------------------------------------------------------------------


def test_event_match_spec_examples_topic():
    ev = {"type": "m.room.topic", "state_key": "", "content": {"topic": "Lunch plans"}}
    cond = {"kind": "event_match", "key": "content.topic", "pattern": "lunc?*"}
    assert condition_matches(cond, ev, ALICE, Ctx())
    for topic, expected in (("LUNCH", True), (" lunch", False), ("lunc", False), (None, False)):
        ev["content"]["topic"] = topic
        assert condition_matches(cond, ev, ALICE, Ctx()) is expected, topic


def test_event_match_absent_or_non_string_never_matches_even_star():
    cond = {"kind": "event_match", "key": "content.n", "pattern": "*"}
    assert not condition_matches(cond, {"content": {}}, ALICE, Ctx())
    assert not condition_matches(cond, {"content": {"n": 3}}, ALICE, Ctx())
    assert condition_matches(cond, {"content": {"n": ""}}, ALICE, Ctx())


def test_body_matching_uses_word_boundaries():
    # Spec example: "ex*ple" against content.body.
    cond = {"kind": "event_match", "key": "content.body", "pattern": "ex*ple"}
    for body, expected in (("An example event.", True), ("exple", True),
                           ("An exciting triple-whammy", True), ("examples", False),
                           ("reexample", False)):
        assert condition_matches(cond, msg(body), ALICE, Ctx()) is expected, body
    assert glob_matches("cake", "I like CAKE!", word_boundary=True)
    assert not glob_matches("cake", "cupcakes", word_boundary=True)
    assert not glob_matches("a.c", "abc")  # regex metacharacters are literal


def test_event_property_is_is_exact_and_typed():
    ev = {"type": "m.room.create", "content": {"m.federate": True, "n": 1, "s": "true"}}
    cond = {"kind": "event_property_is", "key": "content.m\\.federate", "value": True}
    assert condition_matches(cond, ev, ALICE, Ctx())
    assert not condition_matches({**cond, "value": "true"}, ev, ALICE, Ctx())
    assert not condition_matches({**cond, "key": "content.n"}, ev, ALICE, Ctx())  # 1 is not true
    assert not condition_matches({**cond, "value": 1, "key": "content.s"}, ev, ALICE, Ctx())
    null = {"kind": "event_property_is", "key": "content.x", "value": None}
    assert condition_matches(null, {"content": {"x": None}}, ALICE, Ctx())
    assert not condition_matches(null, {"content": {}}, ALICE, Ctx())


def test_event_property_contains_spec_example():
    ev = {"type": "m.room.canonical_alias",
          "content": {"alt_aliases": ["#somewhere:example.org", "#myroom:example.com"]}}
    cond = {"kind": "event_property_contains", "key": "content.alt_aliases",
            "value": "#myroom:example.com"}
    assert condition_matches(cond, ev, ALICE, Ctx())
    assert not condition_matches({**cond, "value": ":example.com"}, ev, ALICE, Ctx())
    assert not condition_matches(cond, {"content": {"alt_aliases": "#myroom:example.com"}},
                                 ALICE, Ctx())


def test_dot_paths_with_escapes():
    assert split_path("content.m\\.relates_to.rel_type") == ("content", "m.relates_to",
                                                            "rel_type")
    assert split_path("content.m\\\\foo") == ("content", "m\\foo")
    assert split_path("content.a\\xb") == ("content", "a\\xb")


@pytest.mark.parametrize("spec,count,expected", [
    ("2", 2, True), ("==2", 3, False), ("<10", 9, True), ("<10", 10, False), (">=3", 3, True),
    (">3", 3, False), ("<=1", 1, True), ("two", 2, False), ("=2", 2, False), ("", 0, False),
])
def test_room_member_count(spec, count, expected):
    cond = {"kind": "room_member_count", "is": spec}
    assert condition_matches(cond, msg(), ALICE, Ctx(member_count=count)) is expected


def test_sender_notification_permission_and_unknown_conditions():
    cond = {"kind": "sender_notification_permission", "key": "room"}
    assert not condition_matches(cond, msg(), ALICE, Ctx(sender_level=49))
    assert condition_matches(cond, msg(), ALICE, Ctx(sender_level=50))
    assert not condition_matches({"kind": "org.example.new"}, msg(), ALICE, Ctx())


def test_contains_display_name_is_whole_words_case_insensitive():
    cond = {"kind": "contains_display_name"}
    ctx = Ctx(names={ALICE: "Alice Smith"})
    assert condition_matches(cond, msg("hi alice smith, bed 4?"), ALICE, ctx)
    assert not condition_matches(cond, msg("hi alice smithers"), ALICE, ctx)
    assert not condition_matches(cond, msg("hi"), BOB, ctx)  # no display name: no match


# --- the default ruleset --------------------------------------------------------------------


def test_default_ruleset_has_the_spec_rules_in_order():
    rules = client_ruleset(ALICE, None)["global"]
    assert [r["rule_id"] for r in rules["override"]] == [
        ".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me",
        ".m.rule.member_event", ".m.rule.is_user_mention", ".m.rule.contains_display_name",
        ".m.rule.is_room_mention", ".m.rule.roomnotif", ".m.rule.tombstone",
        ".m.rule.reaction", ".m.rule.room.server_acl", ".m.rule.suppress_edits",
    ]
    assert [r["rule_id"] for r in rules["underride"]] == [
        ".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one",
        ".m.rule.message", ".m.rule.encrypted",
    ]
    assert rules["content"][0]["pattern"] == "alice"
    assert rules["override"][0] == {"rule_id": ".m.rule.master", "default": True,
                                    "enabled": False, "conditions": [], "actions": []}
    invite = rules["override"][2]["conditions"][2]
    assert invite == {"kind": "event_match", "key": "state_key", "pattern": ALICE}
    assert all(r["default"] for kind in rules.values() for r in kind)


def test_plain_message_notifies_without_highlight():
    rule_id, actions = run(msg("bed 4 needs review"))
    assert rule_id == ".m.rule.message" and notifies(actions) and not highlights(actions)


def test_one_to_one_room_plays_a_sound():
    rule_id, actions = run(msg("hi"), ctx=Ctx(member_count=2))
    assert rule_id == ".m.rule.room_one_to_one" and tweaks(actions) == {"sound": "default"}


def test_user_mention_highlights_and_legacy_rules_yield_to_m_mentions():
    ev = msg("ping", **{"m.mentions": {"user_ids": [ALICE]}})
    rule_id, actions = run(ev)
    assert rule_id == ".m.rule.is_user_mention" and highlights(actions)
    assert run(ev, user=BOB)[0] == ".m.rule.message"
    # Without m.mentions the legacy display-name and user-name rules apply ...
    ctx = Ctx(names={ALICE: "Dr Alice"})
    assert run(msg("ask dr alice"), ctx=ctx)[0] == ".m.rule.contains_display_name"
    assert run(msg("ALICE?"), ctx=ctx)[0] == ".m.rule.contains_user_name"
    # ... with it (even empty) they do not.
    assert run(msg("ask dr alice", **{"m.mentions": {}}), ctx=ctx)[0] == ".m.rule.message"


def test_room_mentions_need_power():
    ev = msg("all", **{"m.mentions": {"room": True}})
    assert run(ev, ctx=Ctx(sender_level=50))[0] == ".m.rule.is_room_mention"
    assert run(ev, ctx=Ctx(sender_level=0))[0] == ".m.rule.message"
    assert run(msg("@room fire drill"), ctx=Ctx(sender_level=100))[0] == ".m.rule.roomnotif"


def test_suppressing_rules():
    assert run(msg("n", msgtype="m.notice"))[1] == []
    edit = msg("* fix", **{"m.relates_to": {"rel_type": "m.replace", "event_id": "$x"}})
    assert run(edit)[0] == ".m.rule.suppress_edits" and not notifies(run(edit)[1])
    reaction = {"type": "m.reaction", "sender": BOB, "content": {}}
    assert not notifies(run(reaction)[1])
    join = {"type": "m.room.member", "state_key": BOB, "sender": BOB,
            "content": {"membership": "join"}}
    assert run(join)[0] == ".m.rule.member_event" and not notifies(run(join)[1])


def test_invites_tombstones_calls_and_encrypted():
    invite = {"type": "m.room.member", "state_key": ALICE, "sender": BOB,
              "content": {"membership": "invite"}}
    assert run(invite)[0] == ".m.rule.invite_for_me" and notifies(run(invite)[1])
    assert run(invite, user=BOB)[0] == ".m.rule.member_event"
    tomb = {"type": "m.room.tombstone", "state_key": "", "content": {}}
    assert run(tomb)[0] == ".m.rule.tombstone" and highlights(run(tomb)[1])
    assert run({"type": "m.room.tombstone", "content": {}}) is None  # no state_key: not state
    call = {"type": "m.call.invite", "content": {}}
    assert tweaks(run(call)[1]) == {"sound": "ring"}
    enc = {"type": "m.room.encrypted", "content": {"ciphertext": "x"}}
    assert run(enc)[0] == ".m.rule.encrypted"
    assert run(enc, ctx=Ctx(member_count=2))[0] == ".m.rule.encrypted_room_one_to_one"
    assert run({"type": "org.example.custom", "content": {}}) is None  # nothing matches


def test_condition_results_are_shared_between_users_but_display_names_are_not():
    ctx = Ctx(names={ALICE: "Alice", BOB: "Bob"})
    cache: dict = {}
    rules = merged_ruleset(None, None)
    ev = msg("bob, see this")
    ev["sender"] = "@carol:example.org"
    assert evaluate(rules, ev, ALICE, ctx, cache)[0] == ".m.rule.message"
    assert evaluate(rules, ev, BOB, ctx, cache)[0] == ".m.rule.contains_display_name"
    assert ctx.lookups == 2


# --- user rules and edits -------------------------------------------------------------------


def test_user_rules_rank_by_kind_and_master_beats_everything():
    stored = put_rule(None, "room", parse_rule_body("room", ROOM, {"actions": []}), None, None)
    assert run(msg("x"), stored=stored) == (ROOM, [])
    stored = put_rule(stored, "override", parse_rule_body(
        "override", "beer", {"conditions": [{"kind": "event_match", "key": "content.body",
                                             "pattern": "beer"}],
                             "actions": ["notify", {"set_tweak": "sound", "value": "b.wav"}]}),
        None, None)
    assert run(msg("beer o'clock"), stored=stored)[0] == "beer"
    stored = set_enabled(stored, "override", ".m.rule.master", {"enabled": True})
    assert run(msg("beer o'clock"), stored=stored) == (".m.rule.master", [])
    sender = put_rule(None, "sender", parse_rule_body("sender", BOB, {"actions": ["notify",
                      {"set_tweak": "highlight"}]}), None, None)
    assert run(msg("x"), stored=sender)[0] == BOB and highlights(run(msg("x"), stored=sender)[1])


def test_content_rule_and_before_after_ordering():
    s = put_rule(None, "content", parse_rule_body("content", "cake", {
        "pattern": "cake", "actions": ["notify"]}), None, None)
    s = put_rule(s, "content", parse_rule_body("content", "lie", {
        "pattern": "cake*lie", "actions": ["notify", {"set_tweak": "highlight"}]}), "cake", None)
    s = put_rule(s, "content", parse_rule_body("content", "last", {
        "pattern": "x", "actions": []}), None, "cake")
    assert [r["rule_id"] for r in s["rules"]["content"]] == ["lie", "cake", "last"]
    assert run(msg("the cake is a lie"), stored=s)[0] == "lie"
    assert run(msg("cake please"), stored=s)[0] == "cake"
    merged = client_ruleset(ALICE, s)["global"]["content"]
    assert [r["rule_id"] for r in merged] == ["lie", "cake", "last", ".m.rule.contains_user_name"]
    # Updating keeps the rule's place and its enabled state.
    s = set_enabled(s, "content", "cake", {"enabled": False})
    s = put_rule(s, "content", parse_rule_body("content", "cake", {
        "pattern": "pie", "actions": []}), None, None)
    assert [r["rule_id"] for r in s["rules"]["content"]] == ["lie", "cake", "last"]
    assert get_rule(ALICE, s, "content", "cake") == {
        "rule_id": "cake", "enabled": False, "actions": [], "pattern": "pie", "default": False}


def test_default_rule_actions_and_enabled_can_change_but_not_be_deleted():
    s = set_actions(None, "underride", ".m.rule.message",
                    {"actions": ["notify", "dont_notify", {"set_tweak": "highlight"}]})
    assert run(msg("x"), stored=s)[1] == ["notify", {"set_tweak": "highlight"}]
    s = set_enabled(s, "underride", ".m.rule.message", {"enabled": False})
    assert run(msg("x"), stored=s) is None
    with pytest.raises(MatrixError) as e:
        delete_rule(s, "underride", ".m.rule.message")
    assert (e.value.status, e.value.errcode) == (400, "M_INVALID_PARAM")
    assert default_ruleset(ALICE)["underride"][3]["actions"] == ["notify"]  # not mutated


@pytest.mark.parametrize("kind,rule_id,body,errcode", [
    ("override", ".mine", {"actions": []}, "M_INVALID_PARAM"),
    ("override", "a/b", {"actions": []}, "M_INVALID_PARAM"),
    ("override", "a\\b", {"actions": []}, "M_INVALID_PARAM"),
    ("override", "ok", {}, "M_BAD_JSON"),
    ("override", "ok", {"actions": "notify"}, "M_BAD_JSON"),
    ("override", "ok", {"actions": ["explode"]}, "M_INVALID_PARAM"),
    ("override", "ok", {"actions": [{"value": 1}]}, "M_INVALID_PARAM"),
    ("override", "ok", {"actions": [], "conditions": {}}, "M_BAD_JSON"),
    ("override", "ok", {"actions": [], "conditions": ["x"]}, "M_BAD_JSON"),
    ("override", "ok", {"actions": [], "conditions": [{"kind": "event_match"}]},
     "M_INVALID_PARAM"),
    ("override", "ok", {"actions": [], "conditions": [
        {"kind": "event_property_is", "key": "a", "value": [1]}]}, "M_INVALID_PARAM"),
    ("underride", "ok", {"actions": [], "conditions": [
        {"kind": "room_member_count", "is": "lots"}]}, "M_INVALID_PARAM"),
    ("content", "ok", {"actions": []}, "M_BAD_JSON"),
    ("room", "not-a-room", {"actions": []}, "M_INVALID_PARAM"),
    ("sender", "bob", {"actions": []}, "M_INVALID_PARAM"),
])
def test_malformed_rules_are_refused(kind, rule_id, body, errcode):
    with pytest.raises(MatrixError) as e:
        parse_rule_body(kind, rule_id, body)
    assert (e.value.status, e.value.errcode) == (400, errcode)


def test_unknown_condition_kinds_are_stored_and_never_match():
    rule = parse_rule_body("override", "future", {
        "conditions": [{"kind": "org.example.future"}], "actions": ["notify"]})
    s = put_rule(None, "override", rule, None, None)
    assert run(msg("x"), stored=s)[0] == ".m.rule.message"


def test_edits_of_missing_rules_and_bad_anchors():
    for fn, args in ((delete_rule, ("override", "nope")),
                     (set_enabled, ("override", "nope", {"enabled": True})),
                     (set_actions, ("override", "nope", {"actions": []})),
                     (get_rule, ("override", "nope"))):
        with pytest.raises(MatrixError) as e:
            fn(ALICE, None, *args) if fn is get_rule else fn(None, *args)
        assert (e.value.status, e.value.errcode) == (404, "M_NOT_FOUND")
    rule = parse_rule_body("override", "r", {"actions": []})
    for before, after in (("missing", None), (None, ".m.rule.master")):
        with pytest.raises(MatrixError) as e:
            put_rule(None, "override", rule, before, after)
        assert (e.value.status, e.value.errcode) == (400, "M_INVALID_PARAM")
    with pytest.raises(MatrixError) as e:
        set_enabled(None, "override", ".m.rule.master", {"enabled": "yes"})
    assert e.value.errcode == "M_BAD_JSON"


def test_prepared_evaluation_gives_the_same_answers():
    """prepare() once per event + evaluate_prepared() per member == evaluate() per member."""
    from homeserver.protocol.push_rules_bulk import evaluate_prepared, prepare

    users = [ALICE, BOB, "@carol:example.org", "@dave:example.org"]
    ctx = Ctx(member_count=2, names={ALICE: "Alice", "@carol:example.org": "Carol C"},
              sender_level=50)
    events = [
        msg("hello"), msg("alice, carol c: look"), msg("ALICE!", **{"m.mentions": {}}),
        msg("x", **{"m.mentions": {"user_ids": [BOB, "@dave:example.org"]}}),
        msg("@room now"), msg("n", msgtype="m.notice"),
        {"type": "m.room.member", "state_key": "@dave:example.org", "sender": ALICE,
         "content": {"membership": "invite"}},
        {"type": "m.room.encrypted", "sender": ALICE, "content": {}},
        {"type": "m.room.tombstone", "state_key": "", "sender": ALICE, "content": {}},
        {"type": "org.example", "sender": ALICE, "content": {"body": "alice"}},
    ]
    rules = merged_ruleset(None, None)
    for ev in events:
        cache: dict = {}
        prepared = prepare(rules, ev, ctx, cache)
        for user in users:
            assert evaluate_prepared(prepared, ev, user, ctx, cache) == \
                evaluate(rules, ev, user, ctx, {}), (ev, user)
