"""Lab 41's exercises: two things Swarm does for every task, done by hand on one Docker Engine.

A swarm replaces a task whose HEALTHCHECK fails and hands secrets to tasks as read-only files.
Both rest on plain Docker features; these exercises use the host's Docker Engine (no swarm), and
each check reads the engine's own view of the learner's container and then tests it for real:
it breaks the health check's target and waits for Docker to notice, or tries to write the secret.
"""

from __future__ import annotations

import json
import subprocess
import time

from labkit.practice import Exercise, Target, Verdict

NEEDS = ("root", "dockerd", "docker")
IMAGE = "labkit/busybox:latest"


def _docker(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def _inspect(name: str) -> dict | None:
    res = _docker("inspect", "--type", "container", name)
    if res.returncode != 0:
        return None
    return json.loads(res.stdout)[0]


def _image(t: Target) -> None:
    """The lab's busybox image in the host's Docker Engine (``docker load`` from labkit's store)."""
    from labkit.images import ImageStore

    if _docker("image", "inspect", IMAGE).returncode != 0:
        ImageStore().export_to_docker("busybox")


def _remove(name: str) -> None:
    _docker("rm", "-f", name)


def _missing(name: str, how: str) -> str:
    return f"there is no container {name!r} on the host's Docker Engine yet (docker ps -a lists them); {how}"


def _health(name: str) -> str:
    c = _inspect(name) or {}
    return ((c.get("State") or {}).get("Health") or {}).get("Status", "")


def _wait_health(name: str, want: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while (now := _health(name)) != want and time.monotonic() < deadline:
        time.sleep(0.3)
    return now


# ---- 41.1: a HEALTHCHECK that notices ----------------------------------------------------------------
def _verify_health(t: Target) -> Verdict:
    name = t.name("web")
    c = _inspect(name)
    if c is None:
        return Verdict.not_yet(_missing(name, f"run {IMAGE} serving /www with httpd and a --health-cmd"))
    if not c["State"]["Running"]:
        return Verdict.not_yet(f"{name} is not running ({c['State']['Status']}); its httpd must keep running")
    check = c["Config"].get("Healthcheck") or {}
    if not check.get("Test") or check["Test"] == ["NONE"]:
        return Verdict.not_yet(f"{name} has no health check: add --health-cmd (and --health-interval 1s)")
    interval = check.get("Interval", 0) / 1e9
    if not interval or interval > 2:
        return Verdict.not_yet(f"{name} checks its health every {interval or 30:g} s; use --health-interval 1s "
                               "(at most 2 s) so a failure is noticed within seconds")
    if (now := _wait_health(name, "healthy", 10)) != "healthy":
        return Verdict.not_yet(f"{name}'s health is {now or 'unknown'!r}, not healthy: does the check succeed while "
                               "/www/index.html is served? (docker inspect shows the check's last output)")
    _docker("exec", name, "rm", "-f", "/www/index.html")
    if (now := _wait_health(name, "unhealthy", 5 + interval * (check.get("Retries") or 3) * 2)) != "unhealthy":
        return Verdict.not_yet(f"the check removed /www/index.html from {name}, and Docker still calls it {now!r}: "
                               "the health check must fail when the page is gone (fetch the page, do not just "
                               "test that httpd runs)")
    return Verdict.ok(f"{name} was healthy, and became unhealthy within seconds once its page was removed "
                      "(the check removed it; a swarm would now replace this task)")


def _solve_health(t: Target) -> None:
    _remove(t.name("web"))
    _docker("run", "-d", "--name", t.name("web"), "--label", "labkit=1",
            "--health-cmd", "wget -q -O /dev/null http://127.0.0.1/index.html", "--health-interval", "1s",
            "--health-retries", "2", "--health-timeout", "1s",
            IMAGE, "sh", "-c", "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www")


# ---- 41.2: a secret as a read-only file --------------------------------------------------------------
def _verify_secret(t: Target) -> Verdict:
    name = t.name("app")
    c = _inspect(name)
    if c is None:
        return Verdict.not_yet(_missing(name, "run a container that keeps running (sleep 3600) with your secret "
                                        "file mounted at /run/secrets/greeting"))
    if not c["State"]["Running"]:
        return Verdict.not_yet(f"{name} is not running ({c['State']['Status']}); give it a command that keeps running")
    mount = next((m for m in c.get("Mounts", []) if m.get("Destination") == "/run/secrets/greeting"), None)
    if mount is None:
        return Verdict.not_yet(f"{name} has nothing mounted at /run/secrets/greeting (docker inspect shows its Mounts)")
    if mount.get("RW", True):
        return Verdict.not_yet(f"/run/secrets/greeting in {name} is writable; mount it read-only (:ro), as Swarm does")
    read = _docker("exec", name, "cat", "/run/secrets/greeting")
    value = read.stdout.strip()
    if read.returncode != 0 or not value:
        return Verdict.not_yet(f"{name} cannot read a value from /run/secrets/greeting ({read.stderr.strip()})")
    leaked = [e.split("=", 1)[0] for e in c["Config"].get("Env") or [] if value in e]
    if leaked:
        return Verdict.not_yet(f"the secret's value is also in the environment variable(s) {leaked}: anyone who can "
                               "docker inspect the container sees it there; pass it only as the file")
    write = _docker("exec", name, "sh", "-c", "echo changed >> /run/secrets/greeting")
    if write.returncode == 0:
        return Verdict.not_yet(f"the check could append to /run/secrets/greeting inside {name}; it must be read-only")
    return Verdict.ok(f"{name} reads its secret ({len(value)} bytes) from a read-only file at /run/secrets/greeting, "
                      "and no environment variable holds it")


def _solve_secret(t: Target) -> None:
    t.workdir.mkdir(parents=True, exist_ok=True)
    secret = t.workdir / "greeting.txt"
    secret.write_text("the database password is hunter2\n")
    _remove(t.name("app"))
    _docker("run", "-d", "--name", t.name("app"), "--label", "labkit=1",
            "-v", f"{secret}:/run/secrets/greeting:ro", IMAGE, "sleep", "3600")


EXERCISES = [
    Exercise(
        id="41.1",
        title="A HEALTHCHECK that notices",
        statement=f"""On the host's Docker Engine, run a container named `ex-web` (your name prefix, then `web`)
from `{IMAGE}` that serves `/www/index.html` with `httpd -f -p 80 -h /www`, with a health check
that runs every second and **fails when the page is gone**. The check waits for Docker to call the
container healthy, then removes `/www/index.html` inside it and waits for `unhealthy`: the
signal a swarm acts on when it replaces a task.""",
        verify=_verify_health,
        solution=_solve_health,
        solution_text=f"""```bash
docker run -d --name ex-web --label labkit=1 \\
  --health-cmd 'wget -q -O /dev/null http://127.0.0.1/index.html' \\
  --health-interval 1s --health-retries 2 --health-timeout 1s \\
  {IMAGE} sh -c 'mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www'
```""",
        setup=_image,
        cleanup=lambda t: _remove(t.name("web")),
        concept="HEALTHCHECK",
        difficulty="easy",
        needs=NEEDS,
    ),
    Exercise(
        id="41.2",
        title="A secret as a read-only file",
        statement=f"""Swarm gives a task its secrets as files under `/run/secrets/`, read-only, and never as
environment variables (which `docker inspect` shows to anyone). Do the same by hand: write a
secret to a file, and run a container `ex-app` from `{IMAGE}` (`sleep 3600`) that sees it at
`/run/secrets/greeting`, read-only, with the value in no environment variable. The check reads
the file inside the container, searches the container's environment for the value, and tries to
append to the file.""",
        verify=_verify_secret,
        solution=_solve_secret,
        solution_text=f"""```bash
echo 'the database password is hunter2' > greeting.txt
docker run -d --name ex-app --label labkit=1 \\
  -v "$PWD/greeting.txt:/run/secrets/greeting:ro" {IMAGE} sleep 3600
```""",
        setup=_image,
        cleanup=lambda t: _remove(t.name("app")),
        concept="secrets as files",
        difficulty="medium",
        needs=NEEDS,
    ),
]
