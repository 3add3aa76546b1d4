"""The README's first screen tells each of the book's three users what to run."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_first_screen_names_the_commands_for_each_user():
    first_screen = "\n".join(ROOT.joinpath("README.md").read_text().splitlines()[:25])
    for needed in ["make book", "make test", "make lab", "_build/html/index.html", "reader", "learner", "teacher"]:
        assert needed in first_screen, needed


def test_readme_has_the_sections_the_integrator_extends():
    text = ROOT.joinpath("README.md").read_text()
    for heading in ["## What the host needs", "## Labkit commands", "## Running a cluster"]:
        assert heading in text
    assert "simulated" in text and "root" in text


def test_every_labkit_command_in_the_cli_is_in_the_readme():
    from labkit.cli import COMMANDS

    text = ROOT.joinpath("README.md").read_text()
    missing = [name for name in COMMANDS if f"labkit {name}" not in text]
    assert not missing, f"README does not mention: {missing}"
