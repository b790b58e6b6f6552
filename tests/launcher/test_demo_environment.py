"""What `make run` chooses for the demo, and says it chose."""

from __future__ import annotations

from launcher.__main__ import demo_environment


def test_the_demo_waits_seconds_not_a_minute_and_says_so() -> None:
    env, notes = demo_environment({"DEMO": "1"})
    assert env["TOKENIZATION_MAX_MINT_WAIT_SECS"] == "3"
    assert env["TOKENIZATION_DUPLICATE_WINDOW_SECS"] == "4"
    assert any("TOKENIZATION_MAX_MINT_WAIT_SECS=3" in note for note in notes)


def test_an_operators_own_wait_and_no_demo_are_left_alone() -> None:
    env, notes = demo_environment({"DEMO": "1", "TOKENIZATION_MAX_MINT_WAIT_SECS": "60"})
    assert env["TOKENIZATION_MAX_MINT_WAIT_SECS"] == "60"
    assert not any("MAX_MINT_WAIT" in note for note in notes)
    env, notes = demo_environment({"DEMO": "0"})
    assert "TOKENIZATION_MAX_MINT_WAIT_SECS" not in env and notes == []
