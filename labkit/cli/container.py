"""``labkit run | ps | logs | stop``: containers from the command line, on any backend.

``labkit run`` makes the same CRI calls the kubelet makes (sandbox, container, start), so what
you see here is what a pod gets. Its standard output is the container's; one line on standard
error names the backend that really ran it. Errors are one line and a non-zero exit code:
125 when the container could not be created, 127 when its command is not in the image
(Docker's conventions), otherwise the container's own exit code.

The plain ``labkit run --rm [--runtime native] ... IMAGE -- CMD`` never reaches this module: the
entry point hands it to :mod:`labkit.cli.fastpath.runfast`, which runs it the way ``runc run`` does (one
container, its own namespaces, no pod sandbox; :mod:`labkit.cli.fastpath.foreground`) and falls
back to the command below for anything else, so both give the same container and messages.
"""

from __future__ import annotations

import os
import sys
import time

import click

RUNTIMES = ("native", "runc", "crun", "oci", "docker", "simulated")
CLI_LABEL = "labkit.io/cli"
RM_LABEL = "labkit.io/rm"


def _fail(msg: str, code: int = 1) -> None:
    click.echo(f"labkit: {msg}", err=True)
    sys.exit(code)


def _runtime(name: str | None):
    """The backend: by name (errors if this host cannot), or the best one with a fallback notice."""
    from labkit.errors import Unsupported
    from labkit.runtime import selection

    if name:
        try:
            rt = selection.get(name)
        except Unsupported as exc:
            _fail(f"cannot use --runtime {name}: {exc}. Without --runtime labkit picks what this host can run "
                  "(the simulated runtime at worst).", 1)
        rt.reason = f"{rt.name}: asked for with --runtime"
        return rt
    rt = selection.default()
    if rt.name == "simulated":
        click.echo(f"labkit: {rt.reason}", err=True)
    return rt


def _follow_local(rt, cid: str) -> None:
    """Copy the container's log to our stdout while it runs (the file the shim writes)."""
    from pathlib import Path

    cdir = rt.containers / cid
    log = Path(cdir / "container.log")
    out = sys.stdout.buffer
    with open(log, "rb") as f:
        delay = 0.001
        while True:
            chunk = f.read()
            if chunk:
                out.write(chunk)
                out.flush()
                delay = 0.001
                continue
            if rt.has_exited(cid):
                rest = f.read()
                if rest:
                    out.write(rest)
                    out.flush()
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


@click.command(context_settings={"ignore_unknown_options": False})
@click.option("--rm", "remove", is_flag=True, help="Remove the container (and its sandbox) when it exits.")
@click.option("--runtime", "runtime", type=click.Choice(RUNTIMES, case_sensitive=False), default=None,
              help="Which backend runs it; default: the best this host supports.")
@click.option("--memory", "-m", default=None, help="Memory limit, e.g. 32m (exceeding it: OOMKilled).")
@click.option("--cpus", default=None, help="CPU quota in cores, e.g. 0.5.")
@click.option("--pids-limit", type=int, default=None, help="Most processes the container may have.")
@click.option("--name", default=None, help="Container name (also the hostname).")
@click.option("--hostname", default=None, help="Hostname inside (default: the name).")
@click.option("-e", "--env", "env", multiple=True, help="KEY=VALUE, repeatable.")
@click.option("-d", "--detach", is_flag=True, help="Run in the background and print the container id.")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(remove: bool, runtime: str | None, memory: str | None, cpus: str | None, pids_limit: int | None,
        name: str | None, hostname: str | None, env: tuple[str, ...], detach: bool, image: str,
        command: tuple[str, ...]) -> None:
    """Run COMMAND in a new container from IMAGE:  labkit run --rm busybox -- sh -c 'echo $$'"""
    import uuid

    from labkit.errors import LabkitError, NotFound
    from labkit.runtime.oneshot import configs, limits, start

    try:
        resources = limits(memory or None, cpus or None, pids_limit)
    except LabkitError as exc:
        _fail(str(exc), 125)
    envd = {}
    for item in env:
        k, sep, v = item.partition("=")
        if not sep or not k:
            _fail(f"-e {item!r} must look like KEY=VALUE", 125)
        envd[k] = v
    rt = _runtime(runtime)
    if detach:
        _drop_inherited_fds()
    short = name or f"{image.split('/')[-1].split(':')[0]}-{uuid.uuid4().hex[:6]}"
    labels = {CLI_LABEL: "true"}
    if remove:
        labels[RM_LABEL] = "true"
    sconf, cconf = configs(image, list(command), short, hostname, envd, resources, labels)
    try:
        sid, cid = start(rt, sconf, cconf)  # on failure, what it made is already removed
    except NotFound as exc:
        _fail(f"[{rt.name}] {exc}", 127 if "executable" in str(exc) else 125)
    except LabkitError as exc:
        _fail(f"[{rt.name}] {exc}", 125)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    if detach:
        click.echo(cid)
        click.echo(f"labkit: started on {rt.name} ({rt.reason})", err=True)
        return
    try:
        if hasattr(rt, "containers"):
            _follow_local(rt, cid)
            st = rt.container_status(cid)
        else:
            st = rt.wait(cid)
            sys.stdout.buffer.write(rt.logs(cid))
            sys.stdout.flush()
    except KeyboardInterrupt:
        rt.stop_container(cid, timeout=2)
        st = rt.container_status(cid)
    code = st.exit_code if st.exit_code is not None else 1
    extra = ""
    if st.reason == "OOMKilled":
        extra = f"; OOMKilled: the kernel killed it at the {memory} memory limit"
    notice = getattr(rt, "notice", "")
    click.echo(f"labkit: ran on {rt.name}, exit {code}{extra}{' (' + notice + ')' if notice else ''}", err=True)
    if remove:
        _cleanup(rt, sid, cid)
    else:
        try:
            rt.stop_pod_sandbox(sid)
        except LabkitError:
            pass
    sys.exit(code)


def _drop_inherited_fds() -> None:
    """Close descriptors our parent leaked to us (Python's own are never inheritable).

    A runtime that forks its shim from this process would otherwise keep them open for the
    container's whole life, and a shell waiting on them (``id=$(labkit run -d …)``) would hang.
    """
    try:
        fds = [int(x) for x in os.listdir("/proc/self/fd")]
    except OSError:
        return
    for fd in fds:
        if fd > 2:
            try:
                if os.get_inheritable(fd):
                    os.close(fd)
            except OSError:
                pass


def _cleanup(rt, sid: str | None, cid: str | None) -> None:
    from labkit.errors import LabkitError
    from labkit.runtime.oneshot import remove

    try:
        remove(rt, sid, cid)
    except LabkitError as exc:
        click.echo(f"labkit: cleanup incomplete ({exc}); run: labkit gc", err=True)


def _backends(include_docker: bool = True):
    """Every backend that has containers on this host, ready to query."""
    from labkit.errors import LabkitError
    from labkit.runtime import records, selection

    out = []
    for name in records.all_backends():
        if name not in RUNTIMES:
            continue
        try:
            out.append(selection.get(name))
        except LabkitError:
            continue
    if include_docker and os.path.exists("/var/run/docker.sock"):
        try:
            out.append(selection.get("docker"))
        except LabkitError:
            pass
    return out


def _find(container_id: str):
    from labkit.errors import NotFound

    for rt in _backends():
        try:
            return rt, rt.container_status(container_id)
        except NotFound:
            continue
    _fail(f"no container {container_id!r} (see: labkit ps -a)", 1)


def _age(ts: float | None) -> str:
    if not ts:
        return "-"
    s = int(time.time() - ts)
    return f"{s}s" if s < 120 else f"{s // 60}m" if s < 7200 else f"{s // 3600}h"


@click.command()
@click.option("-a", "--all", "show_all", is_flag=True, help="Show exited containers too.")
def ps(show_all: bool) -> None:
    """List labkit's containers on every backend."""
    rows = []
    for rt in _backends():
        for st in rt.list_containers():
            if not show_all and st.state.value != "CONTAINER_RUNNING":
                continue
            state = st.state.value.replace("CONTAINER_", "").lower()
            if st.exit_code is not None:
                state += f" ({st.exit_code}{', ' + st.reason if st.reason else ''})"
            rows.append((st.id[:12], rt.name, st.image, state, _age(st.created_at), str(st.pid or "-"), st.name))
    header = ("CONTAINER ID", "RUNTIME", "IMAGE", "STATUS", "CREATED", "PID", "NAME")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    for r in [header] + rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@click.command()
@click.argument("container_id")
def logs(container_id: str) -> None:
    """Print a container's output (stdout and stderr, as the runtime kept them)."""
    rt, st = _find(container_id)
    sys.stdout.buffer.write(rt.logs(st.id))
    sys.stdout.flush()


@click.command()
@click.option("-t", "--time", "timeout", type=float, default=10.0, help="Seconds to wait before SIGKILL.")
@click.argument("container_id")
def stop(timeout: float, container_id: str) -> None:
    """Stop a container: SIGTERM, then SIGKILL after --time seconds (removed if run with --rm)."""
    from labkit.errors import NotFound

    rt, st = _find(container_id)
    try:
        rt.stop_container(st.id, timeout=timeout)
        after = rt.container_status(st.id)
    except NotFound:
        # a foreground ``labkit run --rm`` removes its container itself as soon as it exits
        click.echo(f"{st.id[:12]} stopped on {rt.name}, removed by the labkit run that started it")
        return
    msg = f"{st.id[:12]} stopped on {rt.name}: exit {after.exit_code}"
    if st.labels.get(RM_LABEL) == "true" or st.labels.get(f"label.{RM_LABEL}") == "true":
        _cleanup(rt, st.sandbox_id, st.id)
        msg += ", removed"
    else:
        try:
            rt.stop_pod_sandbox(st.sandbox_id)
        except Exception:  # noqa: BLE001 - the sandbox may be gone already
            pass
    click.echo(msg)
