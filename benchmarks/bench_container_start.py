"""Start-to-exit of a trivial container (/bin/true), every way labkit can run one, side by side.

    .venv/bin/python benchmarks/bench_container_start.py [--runs 30]

The bare runtimes run the same bundle (same overlay root from labkit's busybox image, same
config.json with new pid, mount, uts, ipc and network namespaces). The floor is the least any
of them can do: ``unshare`` of the same namespaces plus ``chroot`` into that root. The ``labkit
run`` lines are whole commands as a user types them: Python starting, the image looked up, an
overlay root mounted, the cgroup made, the container run, everything removed again. Contenders
take turns (round-robin, so a busy moment on a shared machine hits all of them alike); each
line prints the median, its ratio to the floor, and the machine's load average at the start and
end. Goals (issue 3): native library <= 3x floor and < runc, and the ``labkit`` command < runc.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit.cli.fastpath import launcher  # noqa: E402
from labkit.images import ImageStore  # noqa: E402
from labkit.oci import spec  # noqa: E402
from labkit.oci.bundle import Bundle  # noqa: E402
from labkit.runtime import host  # noqa: E402

NAMESPACES = ["pid", "mount", "uts", "ipc", "network"]
CRUN_WRAP = ["unshare", "-m", "sh", "-c", "umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$@\"", "sh"]
CLI = "labkit run --rm busybox -- /bin/true"


def round_robin(contenders: dict[str, tuple[object, int]], runs: int) -> dict[str, list[float]]:
    """Time every contender once per round; ``(fn, every)`` runs fn only every ``every``-th round."""
    for fn, _ in contenders.values():
        fn()  # warm-up: page cache, bytecode, first cgroup creation
    out: dict[str, list[float]] = {k: [] for k in contenders}
    for i in range(runs):
        for name, (fn, every) in contenders.items():
            if i % every:
                continue
            t = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - t)
    return out


def run_cmd(argv: list[str], env: dict[str, str] | None = None) -> None:
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({r.returncode}): {r.stderr.decode(errors='replace')[-300:]}")


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    ok, why = host.can_run_real_containers()
    if not ok:
        print(f"skipped: {why}")
        return 0
    store = ImageStore()
    img = store.ensure("busybox")
    work = Path(tempfile.mkdtemp(prefix="labkit-bench-", dir=str(Path("/run/labkit"))))
    state = work / "state"
    state.mkdir()
    bundle = Bundle.create(work / "bundle", spec.make_config(["/bin/true"], hostname="bench",
                                                             namespaces=NAMESPACES, cgroups_path="/labkit/bench"))
    rootfs = store.prepare_rootfs(img, bundle.rootfs)
    notes: dict[str, str] = {}
    py = sys.executable
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    # measure the commands as installed normally: with cached bytecode (the warm-up run writes it)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    script = Path(py).parent / "labkit"
    load_before = load()
    try:
        root = str(rootfs.path)
        from labkit.oci.native import NativeContainer

        null = os.open(os.devnull, os.O_WRONLY)

        def native_lib_quiet() -> None:
            st = NativeContainer(bundle.path, "b" + uuid.uuid4().hex[:12], root=state, stdout=null, stderr=null).run()
            if st.code != 0:
                raise RuntimeError(f"native exit {st.code}")

        def bare(argv: list[str]):  # noqa: ANN202
            return lambda: run_cmd(argv + ["b" + uuid.uuid4().hex[:12]])

        c: dict[str, tuple[object, int]] = {
            "floor: unshare + chroot": (lambda: run_cmd(["unshare", "--fork", "--pid", "--mount", "--uts", "--ipc",
                                                         "--net", "chroot", root, "/bin/true"]), 1),
            "native (library call)": (native_lib_quiet, 1),
            "runc-shaped CLI (python -m labkit.oci.native run)": (lambda: run_cmd(
                [py, "-m", "labkit.oci.native", "--root", str(state), "run", "b" + uuid.uuid4().hex[:12],
                 "--bundle", str(bundle.path)], env), 1),
        }
        if shutil.which("crun"):
            wrap = CRUN_WRAP if host.crun_needs_unified_unmount() else []
            if wrap:
                notes["crun"] = "inside unshare -m with /sys/fs/cgroup/unified unmounted (hybrid host)"
            c["crun"] = (bare(wrap + ["crun", "--root", str(state / "crun"), "run", "--bundle", str(bundle.path)]), 1)
        if shutil.which("runc"):
            c["runc"] = (bare(["runc", "--root", str(state / "runc"), "run", "--bundle", str(bundle.path)]), 1)
        if script.exists():
            c[f"{CLI}   (the labkit command)"] = (lambda: run_cmd([str(script)] + CLI.split()[1:], env), 1)
            notes[f"{CLI}   (the labkit command)"] = (
                "labkit's launcher: python -S" if launcher.is_launcher(str(script)) else "pip's console script")
        else:
            notes[f"{CLI}   (the labkit command)"] = f"skipped: no {script} (make setup installs it)"
        # what pip's console script does (site, then re, then labkit.cli.main): the launcher's baseline
        pip_like = work / "labkit-pip-shaped"
        pip_like.write_text(f"#!{py}\nimport re\nimport sys\n\nfrom labkit.cli import main\n\n"
                            "sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\nsys.exit(main())\n")
        pip_like.chmod(0o755)
        c["  same through a pip-shaped console script"] = (
            lambda: run_cmd([str(pip_like)] + CLI.split()[1:], env), 1)
        c[f"python -m labkit.cli {CLI[7:]}"] = (lambda: run_cmd([py, "-m", "labkit.cli"] + CLI.split()[1:], env), 1)
        # --rm after IMAGE is read by click only: the CRI path (sandbox, create, start, log, remove)
        c["  same through click and the CRI path"] = (lambda: run_cmd(
            [py, "-m", "labkit.cli", "run", "--runtime", "native", "busybox", "--rm", "--", "/bin/true"], env), 3)
        dok, _ = host.docker_reachable()
        if dok and shutil.which("docker"):
            ref = store.export_to_docker(img).ref
            c["docker run --rm"] = (lambda: run_cmd(
                ["docker", "run", "--rm", "--network", "none", "--label", "labkit=1", ref, "/bin/true"]), 3)
        else:
            notes["docker run --rm"] = "skipped: no Docker daemon"
        results = round_robin(c, args.runs)
        os.close(null)
    finally:
        rootfs.unmount()
        shutil.rmtree(work, ignore_errors=True)

    floor = statistics.median(results["floor: unshare + chroot"])
    width = max(len(k) for k in list(results) + list(notes))
    print(f"trivial container start-to-exit (/bin/true), medians of {args.runs} rounds (click/CRI and docker: "
          f"every 3rd round); namespaces: {', '.join(NAMESPACES)}; load average {load_before} -> {load()}")
    print(f"{'what':<{width}}  {'median':>9}  {'x floor':>7}")
    for k, v in results.items():
        m = statistics.median(v)
        print(f"{k:<{width}}  {m * 1000:8.1f} ms  {m / floor:6.1f}x" + (f"   ({notes[k]})" if k in notes else ""))
    for k, n in notes.items():
        if k not in results:
            print(f"{k:<{width}}  {n}")
    lib = statistics.median(results["native (library call)"])
    cli_key = f"{CLI}   (the labkit command)"
    if "runc" in results:
        runc = statistics.median(results["runc"])
        line = (f"goals: native library <= 3x floor: {'yes' if lib <= 3 * floor else 'NO'} ({lib / floor:.1f}x); "
                f"faster than runc: {'yes' if lib < runc else 'NO'}")
        if cli_key in results:
            cli = statistics.median(results[cli_key])
            line += (f"; the labkit command faster than runc: {'yes' if cli < runc else 'NO'} "
                     f"({cli * 1000:.1f} vs {runc * 1000:.1f} ms, {cli / runc:.2f}x)")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
