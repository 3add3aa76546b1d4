"""Start-to-exit of a trivial container (/bin/true), every way labkit can run one, side by side.

    .venv/bin/python benchmarks/bench_container_start.py [--runs 30]

All runtimes run the same bundle (same overlay root from labkit's busybox image, same
config.json with new pid, mount, uts, ipc and network namespaces). The floor is the least any
of them can do: ``unshare`` of the same namespaces plus ``chroot`` into that root. Each line
prints the median and its ratio to the floor. Anchors measured on the CI host: floor 3 ms,
crun 8 ms, runc 24 ms, docker run 290 ms; goals: native library ≤ 3× floor and < runc, and
the native CLI < runc.
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

from labkit.images import ImageStore  # noqa: E402
from labkit.oci import spec  # noqa: E402
from labkit.oci.bundle import Bundle  # noqa: E402
from labkit.runtime import host  # noqa: E402

NAMESPACES = ["pid", "mount", "uts", "ipc", "network"]
CRUN_WRAP = ["unshare", "-m", "sh", "-c", "umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$@\"", "sh"]


def timed(fn, runs: int) -> list[float]:
    fn()  # warm-up: page cache, first cgroup creation
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def run_cmd(argv: list[str], env: dict[str, str] | None = None) -> None:
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({r.returncode}): {r.stderr.decode(errors='replace')[-300:]}")


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
    results: dict[str, list[float]] = {}
    notes: dict[str, str] = {}
    py = sys.executable
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    # measure the CLI as installed normally: with cached bytecode (the warm-up run writes it)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        root = str(rootfs.path)
        results["floor: unshare + chroot"] = timed(lambda: run_cmd(
            ["unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "chroot", root, "/bin/true"]),
            args.runs)

        from labkit.oci.native import NativeContainer

        null = os.open(os.devnull, os.O_WRONLY)

        def native_lib_quiet() -> None:
            st = NativeContainer(bundle.path, "b" + uuid.uuid4().hex[:12], root=state, stdout=null, stderr=null).run()
            if st.code != 0:
                raise RuntimeError(f"native exit {st.code}")

        results["native (library call)"] = timed(native_lib_quiet, args.runs)
        results["native CLI (python -m labkit.oci.native run)"] = timed(lambda: run_cmd(
            [py, "-m", "labkit.oci.native", "--root", str(state), "run", "b" + uuid.uuid4().hex[:12],
             "--bundle", str(bundle.path)], env), args.runs)
        results["native CLI, python -S (no site-packages)"] = timed(lambda: run_cmd(
            [py, "-S", "-m", "labkit.oci.native", "--root", str(state), "run", "b" + uuid.uuid4().hex[:12],
             "--bundle", str(bundle.path)], env), args.runs)
        if shutil.which("crun"):
            wrap = CRUN_WRAP if host.crun_needs_unified_unmount() else []
            if wrap:
                notes["crun"] = "inside unshare -m with /sys/fs/cgroup/unified unmounted (hybrid host)"
            results["crun"] = timed(lambda: run_cmd(
                wrap + ["crun", "--root", str(state / "crun"), "run", "--bundle", str(bundle.path),
                        "b" + uuid.uuid4().hex[:12]]), args.runs)
        if shutil.which("runc"):
            results["runc"] = timed(lambda: run_cmd(
                ["runc", "--root", str(state / "runc"), "run", "--bundle", str(bundle.path),
                 "b" + uuid.uuid4().hex[:12]]), args.runs)
        results["labkit run --rm --runtime native (whole CLI: image, overlay, sandbox)"] = timed(lambda: run_cmd(
            [py, "-m", "labkit.cli", "run", "--rm", "--runtime", "native", "busybox", "--", "/bin/true"], env),
            max(5, args.runs // 3))
        dok, _ = host.docker_reachable()
        if dok and shutil.which("docker"):
            ref = store.export_to_docker(img).ref
            results["docker run --rm"] = timed(lambda: run_cmd(
                ["docker", "run", "--rm", "--network", "none", "--label", "labkit=1", ref, "/bin/true"]),
                max(5, args.runs // 3))
        else:
            notes["docker run --rm"] = "skipped: no Docker daemon"
        os.close(null)
    finally:
        rootfs.unmount()
        shutil.rmtree(work, ignore_errors=True)

    floor = statistics.median(results["floor: unshare + chroot"])
    width = max(len(k) for k in results)
    print(f"trivial container start-to-exit (/bin/true), median of {args.runs} runs; namespaces: "
          f"{', '.join(NAMESPACES)}")
    print(f"{'what':<{width}}  {'median':>9}  {'x floor':>7}")
    for k, v in results.items():
        m = statistics.median(v)
        print(f"{k:<{width}}  {m * 1000:8.1f} ms  {m / floor:6.1f}x" + (f"   ({notes[k]})" if k in notes else ""))
    for k, n in notes.items():
        if k not in results:
            print(f"{k:<{width}}  {n}")
    lib = statistics.median(results["native (library call)"])
    cli = statistics.median(results["native CLI (python -m labkit.oci.native run)"])
    if "runc" in results:
        runc = statistics.median(results["runc"])
        print(f"goals: native library ≤ 3x floor: {'yes' if lib <= 3 * floor else 'NO'} ({lib / floor:.1f}x); "
              f"faster than runc: {'yes' if lib < runc else 'NO'}; native CLI faster than runc: "
              f"{'yes' if cli < runc else 'NO'} ({cli * 1000:.1f} vs {runc * 1000:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
