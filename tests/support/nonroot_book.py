"""The whole book built by a throwaway user without root or system parts, in the background.

``make test`` starts this build as soon as collection is done (see ``tests/conftest.py``) and the
test in ``tests/test_book_without_root.py`` (moved to the end of the run) waits for it. It is
the longest single check of the suite, and it needs one core while most cluster tests wait on
polls, so running it beside them shortens the run by about its own length. It runs under
a raised nice value so the tests beside it keep their share of the CPU. How the parts are hidden is
described in that test's docstring.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from support.another_user import as_user, hidden_parts, path_without, readable_dir, venv_copy

REPO = Path(__file__).resolve().parents[2]


def _copy_book(dest: Path) -> Path:
    skip = shutil.ignore_patterns(".venv", "_build", ".git", "__pycache__", ".pytest_cache", ".ruff_cache",
                                  "*.egg-info", "teacher")
    shutil.copytree(REPO, dest, ignore=skip)
    return dest


@dataclass
class NonRootBuild:
    scratch: Path = field(default_factory=lambda: readable_dir("lkl-"))  # short: unix socket paths stay < 108 bytes
    user: str = field(default_factory=lambda: f"lklearner{os.getpid() % 100000}")
    proc: subprocess.Popen | None = None
    out: str = ""
    err: str = ""
    returncode: int | None = None

    @property
    def book(self) -> Path:
        return self.scratch / "book"

    def start(self) -> NonRootBuild:
        home = self.scratch / "home"
        subprocess.run(["useradd", "--user-group", "--no-create-home", "--home-dir", str(home),
                        "--shell", "/bin/sh", self.user], check=True, capture_output=True)
        book = _copy_book(self.book)
        python, python_env = venv_copy(self.scratch / "venv", book, self.user, self.user)
        home.mkdir()
        subprocess.run(["chown", "-R", f"{self.user}:{self.user}", str(book), str(home)], check=True)
        env = {"HOME": str(home), "LANG": "C.UTF-8",
               "PATH": f"{python.parent}:{path_without(self.scratch / 'bin', hidden_parts())}",
               "LABKIT_STATE": str(home / "st"), "LABKIT_HIDE_PARTS": "book",
               "DOCKER_HOST": f"unix://{self.scratch}/no-docker.sock", **python_env}
        self.proc = subprocess.Popen([*as_user(self.user, self.user), "env", str(python),
                                      str(book / "scripts" / "build-book.py"), str(book), "-W", "-n", "--keep-going"],
                                     env=env, cwd=book, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     preexec_fn=lambda: os.nice(10))  # the tests beside it keep their CPU share
        return self

    def wait(self, timeout: float = 3300) -> NonRootBuild:
        if self.proc is not None and self.returncode is None:
            self.out, self.err = self.proc.communicate(timeout=timeout)
            self.returncode = self.proc.returncode
        return self

    def remove(self) -> None:
        """Stop the build if it still runs, kill what the user left, remove the user and the scratch folder."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
        for pid in subprocess.run(["pgrep", "-u", self.user], capture_output=True, text=True).stdout.split():
            try:
                os.kill(int(pid), 9)  # what this build's user left running (a kernel, a server)
            except ProcessLookupError:
                pass
        subprocess.run(["userdel", self.user], capture_output=True)
        shutil.rmtree(self.scratch, ignore_errors=True)
