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

The build runs in the background from the start of the run (``tests/support/nonroot_book.py``;
``tests/conftest.py`` starts it and puts this test last); run alone, this test starts it itself.
The build must pass with no execution error and no traceback; each lab that runs containers must
say ``simulated`` (or ``skipped:``, the one line a cell prints when it cannot run, or, for lab 04,
that it only explains because this session is not root).
"""

from __future__ import annotations

import os
import re
import shutil
import sys

import pytest
from support.nonroot_book import NonRootBuild

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


@pytest.mark.timeout(3600)
def test_the_whole_book_builds_as_a_user_without_root_or_system_parts(request: pytest.FixtureRequest) -> None:
    from conftest import NONROOT_BUILD

    build = request.config.stash.get(NONROOT_BUILD, None)
    if build is None or build.returncode not in (None, 0):  # run alone, or a rerun after a failure
        if build is not None:
            build.remove()
        build = request.config.stash[NONROOT_BUILD] = NonRootBuild().start()
    try:
        build.wait()
        html = build.book / "_build" / "html"
        logs = "".join(f"\n--- {log.name}:\n{log.read_text()[-3000:]}" for log in (html / "reports").rglob("*.err.log")) \
            if (html / "reports").is_dir() else ""
        assert build.returncode == 0, (build.out[-4000:] + build.err[-2000:] + logs)
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
        if build.returncode == 0 or build.proc is None or build.proc.poll() is not None:
            build.remove()
