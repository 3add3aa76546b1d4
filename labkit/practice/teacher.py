"""The teacher's edition: the student book plus an answer key, built into ``_build/teacher``.

The answer key is generated from the same data the notebooks check against: every lab's
exercises (statement, reference solution) and every chapter's self-check (accepted answers and
why). The student site's table of contents never lists it, so handing out ``_build/html`` does not
hand out the answers.

    python -m labkit.practice.teacher BOOK_DIR   # writes BOOK_DIR/teacher/{answer-key.md,_toc.yml,_config.yml}
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from labkit.practice.catalog import all_exercises


def answer_key_markdown() -> str:
    """The answer key: exercises by lab, then the chapters' self-checks."""
    from labkit.view.selfcheck import questions

    out = ["# Answer key (teacher's edition)", "",
           "Every exercise with its reference solution, and every self-check with the answers it accepts. "
           "This page is only in the teacher's edition (`make teacher-book`); the student site does not carry it.",
           "", "## Lab exercises", ""]
    lab = None
    for ex in all_exercises():
        if ex.lab != lab:
            lab = ex.lab
            out += [f"### Lab {lab}", ""]
        out += [f"#### {ex.id}: {ex.title} ({ex.difficulty}{', ' + ex.concept if ex.concept else ''})", "",
                ex.statement.strip(), "", "**Reference solution.**", "",
                (ex.solution_text.strip() or "_(applied by code; see the exercise's `solution` function)_"), ""]
    out += ["## Chapter self-checks", ""]
    for qid, q in questions().items():
        accepted = ", ".join(f"`{a}`" for a in q.accept)
        out += [f"### {qid}", "", q.shown(), "", f"- **Accepted:** {accepted}", f"- **Why:** {q.why}",
                f"- **Hint given for a wrong answer:** {q.hint}", ""]
    return "\n".join(out)


def write_edition(book: Path) -> Path:
    """Write the teacher's answer key, table of contents and configuration under ``book/teacher``."""
    book = book.resolve()
    folder = book / "teacher"
    folder.mkdir(exist_ok=True)
    (folder / "answer-key.md").write_text(answer_key_markdown() + "\n")
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    toc["parts"].append({"caption": "For teachers", "chapters": [{"file": "teacher/answer-key"}]})
    (folder / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False, allow_unicode=True))
    config = yaml.safe_load((book / "_config.yml").read_text())
    config["title"] = f"{config.get('title', 'The book')} (teacher's edition)"
    # the student build's execution cache: the teacher's edition runs nothing again
    config.setdefault("execute", {})["cache"] = str(book / "_build" / ".jupyter_cache")
    (folder / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return folder


if __name__ == "__main__":
    print(f"teacher's edition sources in {write_edition(Path(sys.argv[1] if len(sys.argv) > 1 else '.'))}")
