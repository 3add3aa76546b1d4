"""Every lab runs without root and without the system parts (issue 8).

The whole book is built a second time, into a scratch folder, by a throwaway user made for this
test (``useradd``; removed at the end), through ``scripts/build-book.py`` as ``make book`` does.
How the system parts are hidden, so that the build cannot pass by finding them:

* PATH is a folder of links to every program of /usr/local/bin, /usr/bin, /bin, /usr/sbin, /sbin
  *except* the programs the book installs (docker, dockerd, containerd, etcd, etcdctl, runc, crun,
  ip, iptables, busybox, modprobe, dot, chromium ... from ``labkit/system_parts.tsv``), plus the
  copied virtual environment's bin;
* ``LABKIT_HIDE_PARTS=book`` makes labkit's manifest lookups (``labkit.system_parts.which``) answer
  "not installed" for the same programs, including those found by absolute path (the CNI plugins
  in /usr/lib/cni);
* the user is not root and not in the docker group, and ``DOCKER_HOST`` names a socket that does
  not exist, so no Docker Engine is reachable.

The user runs this very interpreter (a hard-linked copy of its prefix when the user may not reach
the original, as under /root): the pinned packages do not all work on another patch release.

The build must pass with no execution error and no traceback; each lab that runs containers must
say ``simulated`` (or ``skipped:``, the one line a cell prints when it cannot run, or, for lab 04,
that it only explains because this session is not root).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.another_user import as_user, hidden_parts, path_without, readable_dir, venv_copy

REPO = Path(__file__).resolve().parents[1]
# pages whose cells start containers or pods: without root they must say which runtime really ran
RUN_CONTAINERS = ("01-container-is-a-process", "02-limits", "04-pivot-root-vs-chroot",
                  "05-one-image-many-runtimes", "14-life-of-a-pod", "20-cri", "24-swap-the-runtime")
SAYS_SO = re.compile(r"simulated|skipped: |not root")  # lab 04 only explains without root, and says so

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0,
                       reason="needs root on Linux to make a throwaway user"),
    pytest.mark.skipif(not all(shutil.which(p) for p in ("useradd", "userdel", "setpriv")),
                       reason="needs useradd, userdel and setpriv (passwd, util-linux)"),
]


def _copy_book(dest: Path) -> Path:
    skip = shutil.ignore_patterns(".venv", "_build", ".git", "__pycache__", ".pytest_cache", ".ruff_cache",
                                  "*.egg-info")
    shutil.copytree(REPO, dest, ignore=skip)
    return dest


@pytest.mark.timeout(3600)
def test_the_whole_book_builds_as_a_user_without_root_or_system_parts():
    scratch = readable_dir("lkl-")  # short: unix socket paths under it must stay below 108 bytes
    user = f"lklearner{os.getpid() % 100000}"
    home = scratch / "home"
    subprocess.run(["useradd", "--user-group", "--no-create-home", "--home-dir", str(home),
                    "--shell", "/bin/sh", user], check=True, capture_output=True)
    try:
        book = _copy_book(scratch / "book")
        python, python_env = venv_copy(scratch / "venv", book, user, user)
        home.mkdir()
        subprocess.run(["chown", "-R", f"{user}:{user}", str(book), str(home)], check=True)
        env = {"HOME": str(home), "LANG": "C.UTF-8",
               "PATH": f"{python.parent}:{path_without(scratch / 'bin', hidden_parts())}",
               "LABKIT_STATE": str(home / "st"), "LABKIT_HIDE_PARTS": "book", "DOCKER_HOST": f"unix://{scratch}/no-docker.sock", **python_env}
        out = subprocess.run([*as_user(user, user), "env", str(python), str(book / "scripts" / "build-book.py"),
                              str(book), "-W", "-n", "--keep-going"], env=env, cwd=book, capture_output=True,
                             text=True, timeout=3300)
        html = book / "_build" / "html"
        logs = "".join(f"\n--- {log.name}:\n{log.read_text()[-3000:]}" for log in (html / "reports").rglob("*.err.log")) \
            if (html / "reports").is_dir() else ""
        assert out.returncode == 0, (out.stdout[-4000:] + out.stderr[-2000:] + logs)
        assert not list((html / "reports").rglob("*.err.log")) if (html / "reports").is_dir() else True
        for page in sorted(html.rglob("*.html")):
            text = page.read_text(errors="replace")
            assert "Traceback (most recent call last)" not in text, f"{page.relative_to(html)} holds a traceback"
        for lab in RUN_CONTAINERS:
            text = (html / "labs" / f"{lab}.html").read_text()
            assert SAYS_SO.search(text), f"labs/{lab} ran without root and does not say simulated"
        doctor = (html / "chapters" / "00-how-to-use.html").read_text()
        assert "apt-get install etcd-client" in doctor and "default runtime: simulated" in doctor
    finally:
        for pid in subprocess.run(["pgrep", "-u", user], capture_output=True, text=True).stdout.split():
            try:
                os.kill(int(pid), 9)  # what this test's user left running (a kernel, a server)
            except ProcessLookupError:
                pass
        subprocess.run(["userdel", user], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
