"""The chapters' self-checks: a learner types an answer, runs the cell, and is told whether it is right.

The questions, the answers they accept and why are data, in ``chapters/selfcheck.yml``: the
teacher's answer key is built from the same file, so a teacher can read the answers, while the
student site only ever shows the question, a hint, or "right". Answers are forgiving: case,
spaces, punctuation and a leading "the", "a" or "an" do not matter, several wordings are accepted,
and a multiple-choice question takes the letter or the text.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from labkit.errors import LabkitError

SOURCE = Path(__file__).resolve().parents[2] / "chapters" / "selfcheck.yml"


@dataclass(frozen=True)
class Question:
    id: str
    chapter: str
    text: str
    accept: tuple[str, ...]
    hint: str
    why: str
    choices: tuple[str, ...] = ()

    def shown(self) -> str:
        """The question as a learner sees it (choices lettered)."""
        if not self.choices:
            return self.text
        letters = "  ".join(f"({string.ascii_lowercase[i]}) {c}" for i, c in enumerate(self.choices))
        return f"{self.text}  {letters}"

    def accepts(self, answer: object) -> bool:
        got = normal(answer)
        if self.choices and len(got) == 1 and got in string.ascii_lowercase[: len(self.choices)]:
            got = normal(self.choices[string.ascii_lowercase.index(got)])
        return got != "" and got in {normal(a) for a in self.accept}


def normal(answer: object) -> str:
    """Lower case, punctuation and extra spaces gone, no leading article (Chinese kept as is)."""
    text = str(answer).strip().lower()
    text = re.sub(r"[\s\"'`.,;:!?()\[\]{}]+", " ", text).strip()
    text = re.sub(r"^(the|a|an) ", "", text)
    return text.replace(" + ", "+").replace("-", " ").strip()


@cache
def _load(path: Path = SOURCE) -> dict[str, Question]:
    data = yaml.safe_load(path.read_text()) or {}
    out = {}
    for qid, q in data.items():
        out[qid] = Question(qid, q["chapter"], q["question"], tuple(str(a) for a in q["accept"]), q["hint"],
                            q["why"], tuple(str(c) for c in q.get("choices") or ()))
        if out[qid].choices and not any(out[qid].accepts(c) for c in out[qid].choices):
            raise LabkitError(f"{path}: {qid}: none of its choices is accepted")
    return out


def questions() -> dict[str, Question]:
    """Every self-check question, by id."""
    return _load()


def check(question_id: str, answer: object = None) -> bool:
    """Print the question and whether ``answer`` is right; return True when it is."""
    try:
        q = questions()[question_id]
    except KeyError:
        raise KeyError(f"no self-check {question_id!r}; known: {', '.join(questions())}") from None
    print(f"Question: {q.shown()}")
    if answer is None or normal(answer) == "":
        print("  Not answered yet: set `answer = ...` in this cell and run it again.")
        return False
    if q.accepts(answer):
        print(f"  {answer!r} is right. {q.why}")
        return True
    print(f"  {answer!r} is not it. Hint: {q.hint}.")
    return False
