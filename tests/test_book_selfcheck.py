"""The chapters' exercises tell a learner whether an answer is right, without printing answers."""

from __future__ import annotations

import pytest

from labkit.view import selfcheck

RIGHT = {"ch01-namespaces": "cpu", "ch03-two-level": "framework", "ch04-quota": "no",
         "ch06-store": "kube-apiserver", "ch07-image": "yes"}


@pytest.mark.parametrize("qid", sorted(selfcheck.QUESTIONS))
def test_right_answer_is_accepted_in_any_case(qid, capsys):
    assert selfcheck.check(qid, "  " + RIGHT[qid].upper() + " ")
    assert "is right" in capsys.readouterr().out


@pytest.mark.parametrize("qid", sorted(selfcheck.QUESTIONS))
def test_wrong_answer_gets_a_hint_and_no_answer(qid, capsys):
    assert not selfcheck.check(qid, "something else")
    out = capsys.readouterr().out
    assert "Hint:" in out and RIGHT[qid] not in out.split("Hint:")[1].replace(selfcheck.QUESTIONS[qid].hint, "")


def test_unanswered_says_what_to_do(capsys):
    assert not selfcheck.check("ch06-store")
    assert "set `answer = ...`" in capsys.readouterr().out


def test_unknown_exercise_lists_the_known_ones():
    with pytest.raises(KeyError, match="ch01-namespaces"):
        selfcheck.check("nope", "x")
