"""The teacher's edition builds, carries every answer, and the student site carries none of them."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.practice import all_exercises
from labkit.view.selfcheck import questions

ROOT = Path(__file__).resolve().parents[1]
STUDENT = ROOT / "_build" / "html"
TEACHER = ROOT / "_build" / "teacher" / "_build" / "html"

pytestmark = pytest.mark.skipif(not (STUDENT / "intro.html").exists(), reason="no built book: run 'make book' first")


def _text(page: Path) -> str:
    """The page's words, with HTML entities and Sphinx's curly quotes back to plain text."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", page.read_text()))
    return re.sub(r"\s+", " ", text.replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"'))


@pytest.fixture(scope="module")
def teacher_site() -> Path:
    subprocess.run([sys.executable, "-m", "labkit.practice.teacher", str(ROOT)], check=True, cwd=ROOT)
    out = subprocess.run([sys.executable, "scripts/build-book.py", ".", "--toc", "teacher/_toc.yml", "--config",
                          "teacher/_config.yml", "--path-output", "_build/teacher", "-W", "-n", "--keep-going"],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"the teacher's edition did not build:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return TEACHER


def test_answer_key_has_every_solution_and_every_accepted_answer(teacher_site: Path) -> None:
    key = _text(teacher_site / "teacher" / "answer-key.html")
    for ex in all_exercises():
        assert f"{ex.id}: {ex.title}" in key, f"the answer key lacks exercise {ex.id}"
    for qid, q in questions().items():
        assert qid in key and q.why[:40] in key, f"the answer key lacks self-check {qid}"
    assert (teacher_site / "labs" / "12-scheduler.html").exists(), "the teacher's edition lacks the labs"


def test_student_site_carries_no_answers(teacher_site: Path) -> None:
    assert not (STUDENT / "teacher").exists()
    whys = [q.why[:40] for q in questions().values()]
    for page in STUDENT.rglob("*.html"):
        text = page.read_text()
        assert "answer-key" not in text, f"{page} links the answer key"
        leaked = [w for w in whys if w in _text(page)]
        assert not leaked, f"{page} shows a self-check's explanation: {leaked}"
