"""The fixtures several test files share, and two checks on the whole run.

- After a run of the whole suite nothing labkit made may be left on the host (``pytest_sessionfinish``):
  each test cleans up after itself, and this proves it did. A leftover fails the run.
- Which tests needed a rerun (``make test`` reruns a failed test once) is listed in the summary, so
  a flaky test is seen and fixed rather than hidden by its second try.

Plain helpers (manifests, waits, markers) are in tests/support/; no test file imports another.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

# --- the apiserver tests: a server on a free port and clients pointed at it ------------------------


@pytest.fixture(scope="module")
def api() -> Iterator:
    from labkit.controlplane.apiserver import APIServer

    with APIServer("memory", bookmark_interval=0.5) as server:
        yield server


@pytest.fixture(scope="module")
def kc(api):  # noqa: ANN001, ANN201
    from kubernetes import client

    cfg = client.Configuration()
    cfg.host = api.url
    return client.ApiClient(cfg)


@pytest.fixture()
def ns(kc) -> Iterator[str]:  # noqa: ANN001
    from kubernetes import client

    name = "t-" + uuid.uuid4().hex[:8]
    client.CoreV1Api(kc).create_namespace({"metadata": {"name": name}})
    yield name
    client.CoreV1Api(kc).delete_namespace(name)


# --- the containers tests: an image store, OCI bundles, and a per-test leak check ------------------


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lkct-images")


@pytest.fixture(scope="module")
def store(image_root: Path):  # noqa: ANN201
    """An image store with busybox in it, one per test module (the builds a module makes stay its own)."""
    from labkit.images import ImageStore

    s = ImageStore(image_root)
    s.ensure("busybox")
    return s


@pytest.fixture()
def state_root(tmp_path: Path) -> Path:
    d = tmp_path / "native-state"
    d.mkdir()
    return d


def _new_children(config: pytest.Config, before: set[int]) -> list[psutil.Process]:
    """Live descendants of this process not in ``before``, less those of the background without-root
    book build (its kernels come and go beside every test; see tests/support/nonroot_book.py)."""
    build = config.stash.get(NONROOT_BUILD, None)
    build_pid = build.proc.pid if build is not None and build.proc is not None else None
    out = []
    for p in psutil.Process().children(recursive=True):
        if p.pid in before:
            continue
        try:
            if p.status() == psutil.STATUS_ZOMBIE or (build_pid and any(a.pid == build_pid for a in p.parents())):
                continue
        except psutil.NoSuchProcess:
            continue
        out.append(p)
    return out


@pytest.fixture()
def no_leaks(tmp_path: Path, state_root: Path, request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it leaves mounts under its tmp dir, lkct- cgroups or container state."""
    from support.containers import our_cgroups, our_mounts

    from labkit.oci import cgroups

    before = set(our_cgroups())
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    mounts = our_mounts(str(tmp_path))
    for m in reversed(mounts):  # clean up so one failure does not cascade, then report
        subprocess.run(["umount", "-l", m], capture_output=True)
    leaked_cg = sorted(set(our_cgroups()) - before)
    for p in leaked_cg:
        try:
            cgroups.destroy_everywhere(p)
        except cgroups.CgroupError:
            pass
    states = [p.name for p in state_root.iterdir()] if state_root.exists() else []
    procs = _new_children(request.config, children_before)
    assert not procs, f"leaked processes: {[(p.pid, p.name()) for p in procs]}"
    assert not mounts, f"leaked mounts: {mounts}"
    assert not leaked_cg, f"leaked cgroups: {leaked_cg}"
    assert not states, f"leaked container state: {states}"


@pytest.fixture()
def make_bundle(store, tmp_path: Path, no_leaks: None) -> Iterator[Callable[..., Path]]:  # noqa: ANN001
    """make_bundle(args, image="busybox", **make_config kwargs) -> bundle dir with a mounted rootfs.

    Depends on ``no_leaks`` so that the leak check runs after the bundles are taken down.
    """
    from support.containers import new_id

    from labkit.oci import spec
    from labkit.oci.bundle import Bundle

    made = []

    def make(args: list[str], image: str = "busybox", cid: str | None = None, **kw) -> Path:  # noqa: ANN003
        cid = cid or new_id()
        kw.setdefault("hostname", cid)
        kw.setdefault("cgroups_path", f"/labkit/{cid}")
        b = Bundle.create(tmp_path / f"bundle-{cid}", spec.make_config(args, **kw))
        r = store.prepare_rootfs(image, b.rootfs)
        made.append((b, r))
        b.path.joinpath(".id").write_text(cid)
        return b.path

    yield make
    for b, r in reversed(made):
        r.unmount()
        b.remove()


# --- the CNI and pod start-up tests: a fabric name and a state folder of their own ----------------


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The name of a fresh CNI fabric, with LABKIT_STATE in tmp_path; fails on a netns or veth left."""
    from support.cni import host_links, netns_list

    monkeypatch.setenv("LABKIT_STATE", str(tmp_path / "state"))
    before = (netns_list(), host_links())
    yield f"labkit-fabric-t{uuid.uuid4().hex[:6]}"
    assert netns_list() - before[0] == set(), "a network namespace was left behind"
    assert host_links() - before[1] == set(), "a host interface was left behind"


# --- the whole run: nothing labkit made is left on the host ----------------------------------------

NONROOT_TEST = "test_book_without_root.py"
NONROOT_BUILD = pytest.StashKey["object"]()


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """Put the without-root book test last and start its build now, in the background
    (tests/support/nonroot_book.py says why)."""
    late = [it for it in items if it.nodeid.split("::")[0].endswith(NONROOT_TEST)]
    if not late or config.option.collectonly or os.environ.get("LABKIT_NONROOT_BACKGROUND") == "0":
        return
    items[:] = [it for it in items if it not in late] + late
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or len(items) == len(late):
        return  # alone (or skipped): the test starts the build itself
    from support.nonroot_book import NonRootBuild

    config.stash[NONROOT_BUILD] = NonRootBuild().start()


def _stop_nonroot_build(config: pytest.Config) -> None:
    build = config.stash.get(NONROOT_BUILD, None)
    if build is not None:
        build.remove()


LEAK_KINDS = ("chaos", "mounts", "cgroups", "netns", "links", "processes", "docker", "containers", "clusters",
              "classes")
_leftovers = pytest.StashKey[list]()


def _whole_suite(config: pytest.Config) -> bool:
    """True when this run collected the whole tests folder (``make test``, ``pytest tests``, ``pytest``).

    A run of one file does not check: on a shared machine it would report other people's runs.
    ``LABKIT_LEAK_CHECK=1`` checks any run, ``=0`` none.
    """
    forced = os.environ.get("LABKIT_LEAK_CHECK")
    if forced in ("0", "1"):
        return forced == "1"
    here = Path(__file__).parent.resolve()
    args = [a for a in config.args if not a.startswith("-")]
    start = config.invocation_params.dir
    return any((start / a.split("::")[0]).resolve() in (here, here.parent) for a in args) if args else True


@pytest.hookimpl(trylast=True)  # after pytest's own sessionfinish has torn every fixture down
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if anything labkit made (mounts, cgroups, netns, ...) is still on the host."""
    config = session.config
    _stop_nonroot_build(config)  # a run cut short (-x, Ctrl-C) must not leave the build's user behind
    if not sys.platform.startswith("linux") or config.option.collectonly or not _whole_suite(config):
        return
    from labkit.runtime import gc

    leaks = gc.find_leaks(LEAK_KINDS)
    config.stash[_leftovers] = leaks
    if leaks and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # noqa: ANN001
    leaks = config.stash.get(_leftovers, [])
    if not leaks:
        return
    tr = terminalreporter
    tr.write_sep("=", f"labkit leak check FAILED: {len(leaks)} left on the host", red=True, bold=True)
    for leak in leaks:
        tr.write_line(f"LEFT {leak}")
    tr.write_line("Each test must remove what it made; remove these by hand with: labkit gc")
    tr.stats.setdefault("leaked", []).extend(leaks)  # the last line says "N passed, M leaked"
