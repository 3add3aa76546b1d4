"""The system parts: every program labkit and its labs run, read from one manifest.

``system_parts.tsv`` beside this file lists each program with its Debian package, the
``labkit doctor`` line that reports it, the labs that fall back without it and what happens
then. The same file feeds ``scripts/setup-system.sh`` (what to install), ``scripts/fresh-check.sh``
(what to purge), ``labkit doctor`` and every error hint, so a hint can never name the wrong package.

``LABKIT_HIDE_PARTS`` (comma-separated programs, or ``book`` for every part the book installs)
makes :func:`which` answer "not installed" for them: the non-root book test uses it, together with
a PATH that lacks them, to run the labs as a machine without those parts would.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

MANIFEST = Path(__file__).with_name("system_parts.tsv")
HIDE_ENV = "LABKIT_HIDE_PARTS"


@dataclass(frozen=True)
class Part:
    """One row of the manifest."""

    program: str  # a name looked up on PATH, or an absolute path
    package: str  # the Debian package that ships it ("" when Debian has none)
    install: str  # "book" (setup installs it), "base" (every Debian has it) or "optional"
    doctor: str  # the ``labkit doctor`` line that reports it ("" for none)
    labs: tuple[str, ...]  # pages that fall back without it: "11", "ch05"
    also: tuple[str, ...]  # other names or places that serve
    without: str  # what happens without it

    @property
    def name(self) -> str:
        """The short name a user types: ``bridge`` for ``/usr/lib/cni/bridge``."""
        return os.path.basename(self.program)


def _field(value: str) -> str:
    return "" if value == "-" else value


@functools.cache
def parts() -> tuple[Part, ...]:
    """Every row of the manifest, in its order."""
    rows = [line.split("\t") for line in MANIFEST.read_text().splitlines() if line and not line.startswith("#")]
    header, body = rows[0], rows[1:]
    out = []
    for row in body:
        if len(row) != len(header):
            raise ValueError(f"{MANIFEST}: {len(row)} fields, {len(header)} expected: {row}")
        r = dict(zip(header, (_field(v) for v in row), strict=True))
        out.append(Part(r["program"], r["package"], r["install"], r["doctor"],
                        tuple(x for x in r["labs"].split(",") if x), tuple(x for x in r["also"].split(",") if x),
                        r["without"]))
    return tuple(out)


def part(program: str) -> Part:
    """The row for ``program`` (a name, a path, or one of a row's ``also`` names)."""
    for p in parts():
        if program in (p.program, p.name) or program in p.also:
            return p
    raise KeyError(f"{program!r} is not in {MANIFEST.name}: add a row for it")


def book_packages() -> list[str]:
    """The Debian packages the book installs, each once, in manifest order."""
    return list(dict.fromkeys(p.package for p in parts() if p.install == "book" and p.package))


def hidden() -> set[str]:
    """Programs ``LABKIT_HIDE_PARTS`` hides (``book`` stands for every part the book installs)."""
    names = {x.strip() for x in os.environ.get(HIDE_ENV, "").split(",") if x.strip()}
    if "book" in names:
        names |= {p.name for p in parts() if p.install == "book"} | {p.program for p in parts() if p.install == "book"}
    return names


def which(program: str) -> str | None:
    """Where ``program`` is on this host (PATH, then the manifest's other places), or None."""
    p = part(program)
    if {program, p.name, p.program} & hidden():
        return None
    for candidate in (p.program, *p.also):
        if candidate.startswith("/"):
            for found in sorted(glob.glob(candidate), reverse=True):  # kubectl.1.* : the newest
                if os.path.isfile(found):
                    return found
        else:
            found = shutil.which(candidate)
            if found:
                return found
    return None


def install_hint(program: str) -> str:
    """What to run to get ``program``: the one place a hint's package name comes from."""
    p = part(program)
    if p.package:
        return f"apt-get install {p.package}"
    return f"{p.name} is not packaged by Debian: install it from its project, or do without it"


def not_installed(program: str) -> str:
    """A one-line message for a missing program: what it is, how to get it, what happens without it."""
    p = part(program)
    text = f"{p.name} is not installed: {install_hint(program)} (Debian/Ubuntu)"
    return text + (f"; without it {p.without}" if p.without else "")


def pages(p: Part) -> str:
    """``labs 03, 05 and chapter 5`` for a row's ``labs`` field."""
    labs = [x for x in p.labs if not x.startswith("ch")]
    chapters = [x[2:].lstrip("0") for x in p.labs if x.startswith("ch")]
    said = []
    if labs:
        said.append(("lab " if len(labs) == 1 else "labs ") + ", ".join(labs))
    if chapters:
        said.append(("chapter " if len(chapters) == 1 else "chapters ") + ", ".join(chapters))
    return " and ".join(said)


@dataclass
class Report:
    """One ``labkit doctor`` line drawn from the manifest: found or not, and what to do."""

    name: str
    ok: bool
    detail: str
    why: str = ""


def reports(install: tuple[str, ...] = ("book", "optional")) -> list[Report]:
    """One line per ``doctor`` name: where each program is, or its package and the labs that fall back."""
    by_line: dict[str, list[Part]] = {}
    for p in parts():
        if p.doctor and p.install in install:
            by_line.setdefault(p.doctor, []).append(p)
    out = []
    for line, rows in by_line.items():
        found = {p.name: which(p.program) for p in rows}
        missing = [p for p in rows if found[p.name] is None]
        if not missing:
            where = sorted({os.path.dirname(f) for f in found.values() if f})
            detail = ", ".join(found.values()) if len(rows) == 1 else f"{', '.join(found)} in {', '.join(where)}"  # type: ignore[arg-type]
            out.append(Report(line, True, detail))
            continue
        p = missing[0]
        names = ", ".join(m.name for m in missing)
        package = f"apt-get install {p.package}" if p.package else "not packaged by Debian (optional)"
        detail = f"{names}: not installed ({package})"
        falls_back = pages(p)
        why = f"without it {p.without}" + (f" [{falls_back}]" if falls_back else "")
        out.append(Report(line, False, detail, why))
    return out


def main() -> None:
    """``python -m labkit.system_parts [book-packages|check]``: for shell scripts that read the manifest."""
    import sys

    what = sys.argv[1] if len(sys.argv) > 1 else "check"
    if what == "book-packages":
        print(" ".join(book_packages()))
    else:
        for r in reports():
            print(f"{'ok ' if r.ok else '-- '}{r.name:<12} {r.detail}")


if __name__ == "__main__":
    main()
