"""Who is in the class: ``--students N`` (student-1 … student-N) or a roster file, one student a line.

A roster line is a name, optionally followed by a size (``alice`` or ``alice,large``); ``#`` starts a
comment. Names become Kubernetes user names and namespace names, so they must be DNS labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from labkit.classroom.sizes import SIZES

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAMESPACE_PREFIX = "class-"


@dataclass(frozen=True)
class Student:
    name: str
    size: str = "small"

    @property
    def namespace(self) -> str:
        return NAMESPACE_PREFIX + self.name


def numbered(n: int, size: str = "small") -> list[Student]:
    if n < 1:
        raise ValueError("a class needs at least one student: --students 1 or more")
    return [Student(f"student-{i + 1}", size) for i in range(n)]


def read_roster(path: str | Path, default_size: str = "small") -> list[Student]:
    """Students from a roster file; a ValueError names the line that is wrong and why."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"no roster file at {p}: write one student name a line (optionally 'name,size')")
    students: list[Student] = []
    seen: set[str] = set()
    for no, raw in enumerate(p.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, sz = (part.strip() for part in line.partition(","))
        name = name.lower()
        sz = sz or default_size
        if not DNS_LABEL.match(name) or len(NAMESPACE_PREFIX + name) > 63:
            raise ValueError(f"{p}:{no}: {name!r} cannot be a user and namespace name: use lower-case letters, "
                             "digits and '-', at most 57 characters, starting and ending with a letter or digit")
        if sz not in SIZES:
            raise ValueError(f"{p}:{no}: unknown size {sz!r}: choose {', '.join(SIZES)}")
        if name in seen:
            raise ValueError(f"{p}:{no}: {name!r} is listed twice")
        seen.add(name)
        students.append(Student(name, sz))
    if not students:
        raise ValueError(f"{p} lists no students")
    return students
