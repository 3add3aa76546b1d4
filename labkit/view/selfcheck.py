"""Self-checking exercises for the chapters: a learner types an answer, runs the cell, and is told
whether it is right, without the answer being printed anywhere in the book.

Only a salted SHA-256 of each expected answer is stored, so a teacher can hand out the static site
or the notebooks and the answers are not one glance away. Add a question with :func:`answer_hash`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Question:
    text: str
    answer_sha256: str
    hint: str


QUESTIONS: dict[str, Question] = {
    "ch01-namespaces": Question(
        "Which one of these is NOT a kind of Linux namespace: pid, mnt, uts, net, ipc, user, cgroup, cpu?",
        "fb8c55a186174e34aa0d144222bda5acc707350c000a0f974c8397b27ac02cdb",
        "namespaces decide what a process can SEE; limits on what it may USE are a different mechanism"),
    "ch03-two-level": Question(
        "In Mesos' two-level scheduling, who decides which tasks run on offered resources: "
        "the master or the framework?",
        "4e18d95194976435b70c90014bea18969da8c5b5a32fe3479fa56e30c248274d",
        "the master only decides who receives an offer"),
    "ch04-quota": Question(
        "In the toy cell, alice has used 8 of her 10 prod CPUs. Is a new prod job of 3 tasks x 1 CPU "
        "admitted? (yes/no)",
        "6d296e1ece07de4e91a0722479475dfca4f6998d29aabce2472f52015258eefb",
        "quota is checked at submission, against what is already granted"),
    "ch06-store": Question(
        "Which Master component is the only one that reads and writes etcd?",
        "e6acb2aa5d9ec8449f2adb6c4007da1037a39d9985531b9d202a5a5b0e60560e",
        "give its full name, as in the architecture diagram"),
    "ch07-image": Question(
        "After dockershim's removal in Kubernetes 1.24, does an image built with Docker still run on a "
        "cluster whose runtime is containerd? (yes/no)",
        "95f2c739ff831e66658911e2f02800cf239bbea02a0a89b09094c5c1ed16afb5",
        "think of which specification an image follows"),
}


def _normal(answer: object) -> str:
    return " ".join(str(answer).strip().lower().split())


def answer_hash(question_id: str, answer: object) -> str:
    """The stored form of an answer (salted with the question id, so equal answers differ)."""
    return hashlib.sha256(f"{question_id}:{_normal(answer)}".encode()).hexdigest()


def check(question_id: str, answer: object = None) -> bool:
    """Print the question and whether ``answer`` is right; return True when it is."""
    try:
        q = QUESTIONS[question_id]
    except KeyError:
        raise KeyError(f"no exercise {question_id!r}; known: {', '.join(QUESTIONS)}") from None
    print(f"Exercise: {q.text}")
    if answer is None or _normal(answer) == "":
        print("  Not answered yet: set `answer = ...` in this cell and run it again.")
        return False
    if answer_hash(question_id, answer) == q.answer_sha256:
        print(f"  {answer!r} is right.")
        return True
    print(f"  {answer!r} is not it. Hint: {q.hint}.")
    return False
