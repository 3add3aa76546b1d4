"""The chapters' self-checks accept reasonable answers, give hints for wrong ones, and cover every chapter."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labkit.view import selfcheck

ROOT = Path(__file__).resolve().parents[1]
QS = selfcheck.questions()
# wordings a learner might type, each of which must be accepted
REASONABLE = {"ch01-namespaces": ["CPU", "h"], "ch01-limits": ["Cgroups", "control groups", "cgroup v2"],
              "ch02-link": ["the container image", "Images", "镜像"], "ch02-digest": ["c", "Digest", "its digest"],
              "ch03-two-level": ["the framework", "Framework", "b", "frameworks"],
              "ch04-quota": ["No", "no.", "b"], "ch05-diy": ["Compose + Swarm", "compose and swarm", "Swarm"],
              "ch05-failover": ["Failover", "fail-over", "c"],
              "ch06-store": ["apiserver", "kube-apiserver", "the API server", "API-server"],
              "ch07-image": ["Yes", "yes, it does", "a"]}
WRONG = {"ch01-namespaces": ["pid", "a"], "ch01-limits": ["namespaces"], "ch02-link": ["virtual machines"],
         "ch02-digest": ["its tag", "b"], "ch03-two-level": ["the master", "a"], "ch04-quota": ["yes"],
         "ch05-diy": ["kubernetes"], "ch05-failover": ["a backup", "disaster recovery"],
         "ch06-store": ["kube-scheduler", "etcd"], "ch07-image": ["no"]}


def test_every_question_has_reasonable_and_wrong_answers_listed_here():
    assert set(REASONABLE) == set(QS) == set(WRONG)


@pytest.mark.parametrize("qid", sorted(REASONABLE))
def test_reasonable_answers_are_accepted(qid, capsys):
    for answer in REASONABLE[qid]:
        assert selfcheck.check(qid, f"  {answer} "), f"{qid}: {answer!r} was refused"
    assert "is right" in capsys.readouterr().out


@pytest.mark.parametrize("qid", sorted(WRONG))
def test_wrong_answers_get_a_hint_and_not_the_answer(qid, capsys):
    for answer in WRONG[qid]:
        assert not selfcheck.check(qid, answer), f"{qid}: {answer!r} was accepted"
    out = capsys.readouterr().out
    assert "Hint:" in out
    after_hints = out.split("Hint:")[-1].replace(QS[qid].hint, "")
    assert QS[qid].why not in out and not any(a in after_hints for a in QS[qid].accept if len(a) > 3)


def test_every_chapter_has_a_self_check_cell():
    for page in sorted((ROOT / "chapters").glob("0[1-7]-*.md")):
        ids = re.findall(r'check\("(ch0\d-[a-z-]+)"', page.read_text())
        assert ids, f"{page.name} has no self-check"
        assert all(QS[i].chapter == page.stem for i in ids), f"{page.name} checks another chapter's question"


def test_unanswered_says_what_to_do(capsys):
    assert not selfcheck.check("ch06-store")
    assert "set `answer = ...`" in capsys.readouterr().out


def test_unknown_question_lists_the_known_ones():
    with pytest.raises(KeyError, match="ch01-namespaces"):
        selfcheck.check("nope", "x")
