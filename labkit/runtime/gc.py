"""Find and remove what labkit runs left behind — after a crash, a kill -9, or a failed test.

Everything labkit makes is named so it can be found again (see :mod:`labkit.paths`):

* container and sandbox records under ``<state_dir>/runtime/<backend>/`` (with the runc/crun
  state, the overlay roots and the pinned namespace files they refer to)
* mounts below labkit's state folder; for the default state folder also labkit-named overlay and
  nsfs mounts elsewhere, never those inside another state folder (a private ``LABKIT_STATE``
  takes only its own mounts and its pod sandboxes' network namespaces)
* cgroups under ``labkit/`` in every hierarchy
* network namespaces ``labkit-*``; host interfaces and bridges ``lk*``
* iptables rules whose comment says ``labkit`` and chains named ``LABKIT-*``
* shims and container processes whose records are gone
* Docker containers labelled ``labkit=1``
* Docker swarm mode and its ``labkit``-labelled services, only when labkit's marker says
  labkit turned swarm mode on (:mod:`labkit.runtime.swarm`)
* folders of notebook clusters whose processes all died (:func:`labkit.cluster.stale_clusters`;
  never a ``labkit cluster up`` cluster's, whose store may hold a user's objects)

:func:`find_leaks` only looks; :func:`collect` removes. ``labkit gc --dry-run`` prints the first.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from labkit import paths
from labkit.runtime import mounts, records

KINDS = ("containers", "mounts", "cgroups", "netns", "links", "iptables", "processes", "docker", "swarm",
         "clusters")
CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass
class Leak:
    kind: str
    what: str  # a path, a name or a pid: enough to find it by hand

    def __str__(self) -> str:
        return f"{self.kind:<10} {self.what}"


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(argv, 1, "", str(exc))


# --- container records ----------------------------------------------------------
def _record_leaks() -> list[Leak]:
    out = []
    for backend in records.all_backends():
        root = records.backend_root(backend)
        for kind in ("containers", "sandboxes"):
            folder = root / kind
            if folder.is_dir():
                out += [Leak("containers", f"{backend}/{kind}/{p.name}") for p in sorted(folder.iterdir())]
        state = root / "state"
        if state.is_dir():
            out += [Leak("containers", f"{backend}/state/{p.name}") for p in sorted(state.iterdir()) if p.is_dir()]
    return out


def _kill_pid_file(path: Path) -> None:
    try:
        pid = int(path.read_text())
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass


def _remove_records() -> None:
    from labkit.runtime import sandbox

    for backend in records.all_backends():
        root = records.backend_root(backend)
        for cdir in sorted((root / "containers").glob("*")) if (root / "containers").is_dir() else []:
            _kill_pid_file(cdir / "pid")
        state = root / "state"
        binary = shutil.which(backend) if backend in ("runc", "crun") else None
        if binary and state.is_dir():
            for sdir in state.iterdir():
                argv = [binary, "--root", str(state), "delete", "--force", sdir.name]
                if backend == "crun":
                    argv = ["unshare", "-m", "sh", "-c", "umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$@\"",
                            "sh"] + argv
                _run(argv)
        if backend == "native" and state.is_dir():
            _delete_native(state)
        for cdir in sorted((root / "containers").glob("*")) if (root / "containers").is_dir() else []:
            _kill_pid_file(cdir / "shim.pid")
            mounts.unmount_under(cdir)
            if not mounts.mounted_under(cdir):
                shutil.rmtree(cdir, ignore_errors=True)
        for sdir in sorted((root / "sandboxes").glob("*")) if (root / "sandboxes").is_dir() else []:
            sandbox.destroy_namespaces(sdir.name, sdir / "ns")
            mounts.unmount_under(sdir)
            if not mounts.mounted_under(sdir):
                shutil.rmtree(sdir, ignore_errors=True)
        if state.is_dir():
            mounts.unmount_under(state)
            for sdir in state.iterdir():
                shutil.rmtree(sdir, ignore_errors=True)


def _delete_native(state: Path) -> None:
    """Let labkit's own runtime delete its containers (processes, cgroups, state)."""
    from labkit.oci import native

    for sdir in state.iterdir():
        try:
            native.NativeContainer.load(sdir.name, root=state).delete(force=True)
        except Exception:  # noqa: BLE001 - half-created: the cgroup sweep below removes the rest
            pass


# --- mounts ------------------------------------------------------------------------
# a mount inside some labkit state folder: <state>/runtime/<backend>/<containers|sandboxes|state>/...
_IN_STATE = re.compile(r"^(.*)/runtime/[^/]+/(?:containers|sandboxes|state)/")
DEFAULT_STATE = "/run/labkit"


def _is_default_state(base: str) -> bool:
    """gc for the default state folder also sweeps labkit-named overlay and nsfs mounts elsewhere
    (what killed labs and runs left); gc for a private ``LABKIT_STATE`` takes only its own."""
    return os.path.realpath(base) == os.path.realpath(DEFAULT_STATE)


def _own_netns(base: str) -> set[str]:
    """The pinned network namespaces of this state folder's pod sandboxes (``labkit-<id>``)."""
    from labkit.runtime import sandbox

    out: set[str] = set()
    runtime = Path(base) / "runtime"
    for folder in runtime.glob("*/sandboxes/*") if runtime.is_dir() else []:
        out.add(f"{sandbox.NETNS_PREFIX}{folder.name}")
    return out


def _mount_leaks() -> list[Leak]:
    """Mounts that belong to the state folder gc runs for (``LABKIT_STATE``, else the default).

    Another state folder's mounts are never taken: a test or lab with its own ``LABKIT_STATE``
    runs gc while other runs' containers are alive, and unmounting their roots or pinned
    namespaces would break them."""
    base = str(paths.state_dir())
    real = os.path.realpath(base)
    found = mounts.mounted_under(base)
    wide = _is_default_state(base)
    netns = set() if wide else _own_netns(base)
    for m, fs in mounts.all_mounts():
        if fs not in ("overlay", "nsfs") or m in found:
            continue
        if wide:
            other = _IN_STATE.match(m)
            if "/labkit" in m and (other is None or os.path.realpath(other.group(1) or "/") == real):
                found.append(m)
        elif fs == "nsfs" and os.path.basename(m) in netns and os.path.dirname(m) in ("/run/netns", "/var/run/netns"):
            found.append(m)
    return [Leak("mounts", m) for m in found]


def _remove_mounts() -> None:
    for leak in sorted(_mount_leaks(), key=lambda x: len(x.what), reverse=True):
        mounts.unmount(leak.what)


# --- cgroups -----------------------------------------------------------------------
def _cgroup_dirs() -> list[Path]:
    out: list[Path] = []
    if not CGROUP_ROOT.is_dir():
        return out
    candidates = [CGROUP_ROOT / "labkit"] + [p / "labkit" for p in CGROUP_ROOT.iterdir() if p.is_dir()]
    for top in candidates:
        if top.is_dir():
            out += [p for p in top.rglob("*") if p.is_dir()]
    return out


def _cgroup_leaks() -> list[Leak]:
    return [Leak("cgroups", str(p)) for p in _cgroup_dirs()]


def _remove_cgroups() -> None:
    dirs = sorted(_cgroup_dirs(), key=lambda p: len(p.parts), reverse=True)
    for d in dirs:
        try:
            for pid in (d / "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
        except OSError:
            pass
    for d in dirs:
        for _ in range(20):
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)


# --- network namespaces, links, iptables -------------------------------------------
def _netns_leaks() -> list[Leak]:
    d = Path("/var/run/netns")
    if not d.is_dir():
        return []
    return [Leak("netns", p.name) for p in sorted(d.iterdir()) if p.name.startswith("labkit-")]


def _link_leaks() -> list[Leak]:
    out = _run(["ip", "-o", "link", "show"])
    names = []
    for line in out.stdout.splitlines():
        m = re.match(r"\d+:\s+([^:@\s]+)", line)
        if m and m.group(1).startswith(paths.IFACE_PREFIX):
            names.append(m.group(1))
    return [Leak("links", n) for n in names]


def _iptables_rules() -> list[tuple[str, str]]:
    """(table, rule spec) for rules tagged with a labkit comment or in LABKIT-* chains."""
    if not shutil.which("iptables"):
        return []
    out = []
    for table in ("filter", "nat"):
        res = _run(["iptables", "-w", "-t", table, "-S"])
        for line in res.stdout.splitlines():
            if line.startswith("-A ") and ("labkit" in line.lower()):
                out.append((table, line))
            elif line.startswith("-N ") and line.split()[1].upper().startswith("LABKIT"):
                out.append((table, line))
    return out


def _iptables_leaks() -> list[Leak]:
    return [Leak("iptables", f"-t {t} {r}") for t, r in _iptables_rules()]


def _remove_iptables() -> None:
    import shlex

    rules = _iptables_rules()
    for table, line in rules:
        if line.startswith("-A "):
            _run(["iptables", "-w", "-t", table, "-D"] + shlex.split(line)[1:])
    for table, line in rules:
        if line.startswith("-N "):
            chain = line.split()[1]
            _run(["iptables", "-w", "-t", table, "-F", chain])
            _run(["iptables", "-w", "-t", table, "-X", chain])


# --- processes -----------------------------------------------------------------------
def _process_leaks() -> list[Leak]:
    """Shims whose container folder is gone (their container died with the record)."""
    out = []
    for p in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not p.name.isdigit():
            continue
        try:
            argv = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"labkit.runtime.shim" in argv:
            cdir = argv[argv.index(b"labkit.runtime.shim") + 1].decode(errors="replace") \
                if argv.index(b"labkit.runtime.shim") + 1 < len(argv) else ""
            if not cdir or not Path(cdir).is_dir():
                out.append(Leak("processes", f"{p.name} shim for {cdir or '?'}"))
    return out


def _remove_processes() -> None:
    for leak in _process_leaks():
        try:
            os.kill(int(leak.what.split()[0]), signal.SIGKILL)
        except OSError:
            pass


# --- docker ---------------------------------------------------------------------------
def _docker_client():
    if not os.path.exists("/var/run/docker.sock"):
        return None
    try:
        import docker

        c = docker.DockerClient(base_url="unix:///var/run/docker.sock", timeout=20)
        c.ping()
        return c
    except Exception:  # noqa: BLE001 - no daemon: nothing to collect there
        return None


def _docker_leaks() -> list[Leak]:
    c = _docker_client()
    if c is None:
        return []
    try:
        return [Leak("docker", f"{x.short_id} {x.name}") for x in c.containers.list(all=True, filters={"label": "labkit=1"}, ignore_removed=True)]
    finally:
        c.close()


def _remove_docker() -> None:
    c = _docker_client()
    if c is None:
        return
    try:
        for x in c.containers.list(all=True, filters={"label": "labkit=1"}, ignore_removed=True):
            try:
                x.remove(force=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
    finally:
        c.close()


def _swarm_leaks() -> list[Leak]:
    from labkit.runtime import swarm

    return [Leak("swarm", what) for what in swarm.leftover()]


def _remove_swarm() -> None:
    from labkit.runtime import swarm

    swarm.remove()


def _cluster_leaks() -> list[Leak]:
    from labkit.cluster import stale_clusters

    return [Leak("clusters", str(folder)) for folder in stale_clusters()]


def _remove_clusters() -> None:
    from labkit.cluster import remove_stale_clusters

    remove_stale_clusters()


_FINDERS = {"containers": _record_leaks, "mounts": _mount_leaks, "cgroups": _cgroup_leaks, "netns": _netns_leaks,
            "links": _link_leaks, "iptables": _iptables_leaks, "processes": _process_leaks, "docker": _docker_leaks,
            "swarm": _swarm_leaks, "clusters": _cluster_leaks}
_REMOVERS = {"containers": _remove_records, "mounts": _remove_mounts, "cgroups": _remove_cgroups,
             "netns": lambda: [_run(["ip", "netns", "del", x.what]) for x in _netns_leaks()],
             "links": lambda: [_run(["ip", "link", "del", x.what]) for x in _link_leaks()],
             "iptables": _remove_iptables, "processes": _remove_processes, "docker": _remove_docker,
             "swarm": _remove_swarm, "clusters": _remove_clusters}


def find_leaks(kinds: tuple[str, ...] | list[str] = KINDS) -> list[Leak]:
    """Everything labkit-named that exists right now (nothing is changed)."""
    out: list[Leak] = []
    for k in kinds:
        out += _FINDERS[k]()
    return out


def collect(kinds: tuple[str, ...] | list[str] = KINDS) -> list[Leak]:
    """Remove leftovers, containers first (they hold mounts, cgroups and namespaces); return what remains."""
    for k in KINDS:
        if k in kinds:
            _REMOVERS[k]()
    return find_leaks(kinds)
