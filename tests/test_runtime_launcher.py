"""The venv's ``labkit`` launcher (labkit.cli.fastpath.launcher) behaves like ``python -m labkit.cli``.

The launcher starts Python without site and loads site only when click has to run, so every
command other than a plain ``labkit run --rm`` goes through a different start-up than pip's
script; these tests run the same command lines both ways and compare what a user sees.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support.runtime import available

from labkit.cli.fastpath import launcher


def _write(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "labkit"
    path.write_text(launcher.render(sys.executable, launcher.package_home()))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("launcher") / "bin")


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the launcher must find labkit by itself
    env.update(extra or {})
    return env


def _both(script: Path, *args: str, env: dict[str, str] | None = None) -> tuple:
    a = subprocess.run([str(script), *args], capture_output=True, text=True, env=_env(env), timeout=120)
    b = subprocess.run([sys.executable, "-m", "labkit.cli", *args], capture_output=True, text=True,
                       env=_env(env), timeout=120)
    prog = "python -m labkit.cli"
    return ((a.returncode, a.stdout, a.stderr),
            (b.returncode, b.stdout.replace(prog, "labkit"), b.stderr.replace(prog, "labkit")))


def test_the_launcher_starts_python_without_site_and_names_the_project():
    text = launcher.render("/venv/bin/python", "/src/project")
    assert text.startswith("#!/venv/bin/python -S\n")
    assert launcher.MARKER in text and "'/src/project'" in text
    compile(text, "labkit", "exec")


def test_a_long_or_spaced_interpreter_path_gets_a_shell_first_line():
    text = launcher.render("/a b/bin/python", "/src")
    assert text.startswith("#!/bin/sh\n'''exec' '/a b/bin/python' -S \"$0\" \"$@\"\n")
    compile(text, "labkit", "exec")  # the shell line is a string literal to Python


def test_the_shell_first_line_runs_too(tmp_path, monkeypatch):
    monkeypatch.setattr(launcher, "_SHEBANG_MAX", 5)
    path = _write(tmp_path / "bin")
    assert path.read_text().startswith("#!/bin/sh\n")
    out = subprocess.run([str(path), "--help"], capture_output=True, text=True, env=_env(), timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Usage: labkit" in out.stdout and "cluster" in out.stdout


@pytest.mark.parametrize("args", [
    ("--help",), ("--version",), ("nosuch",), ("run",), ("run", "--help"), ("cluster", "--help"),
    ("gc", "--only", "nosuchkind"), ("run", "--rm", "--memory", "lots", "busybox", "--", "true"),
    ("run", "--rm", "--runtime", "nosuch", "busybox", "--", "true"), ("image", "--help"),
])
def test_the_launcher_and_python_m_give_the_same_output(script, args):
    mine, theirs = _both(script, *args)
    assert mine == theirs


def test_doctor_reports_the_same_through_both(script):
    mine, theirs = _both(script, "doctor")
    assert mine == theirs
    assert mine[1].strip()


def test_a_missing_image_is_explained_the_same_way(script):
    mine, theirs = _both(script, "run", "--rm", "--runtime", "native", "no-such-image-xyz", "--", "true")
    assert mine == theirs
    assert mine[0] != 0 and "Traceback" not in mine[2]


@pytest.mark.skipif(not available("native")[0], reason="needs root and namespaces")
def test_run_rm_through_the_launcher_passes_the_exit_code_on(script, tmp_path):
    env = {"LABKIT_STATE": str(tmp_path / "state")}
    mine, theirs = _both(script, "run", "--rm", "busybox", "--", "sh", "-c", "echo $$; exit 7", env=env)
    assert mine == theirs == (7, "1\n", "labkit: ran on native, exit 7\n")
    # not root: the fast path declines, and click's path says which runtime really ran
    env["LABKIT_PRETEND_NOT_ROOT"] = "1"
    mine, theirs = _both(script, "run", "--rm", "busybox", "--", "true", env=env)
    assert mine == theirs


@pytest.mark.skipif(not available("native")[0], reason="needs root and namespaces")
def test_ctrl_c_stops_a_launched_container(script, tmp_path):
    env = _env({"LABKIT_STATE": str(tmp_path / "state")})
    proc = subprocess.Popen([str(script), "run", "--rm", "busybox", "--", "sh", "-c",
                             "trap 'echo bye; exit 0' TERM; echo up; while :; do sleep 0.05; done"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline() == "up\n"
        proc.send_signal(signal.SIGINT)  # the container gets SIGTERM, says bye and exits 0
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out == "bye\n" and "ran on native, exit 0" in err
    containers = tmp_path / "state" / "runtime" / "native" / "containers"
    assert not containers.exists() or list(containers.iterdir()) == []


def test_a_moved_project_falls_back_to_the_normal_start(tmp_path):
    path = tmp_path / "labkit"
    path.write_text(launcher.render(sys.executable, str(tmp_path / "gone")))
    path.chmod(0o755)
    out = subprocess.run([str(path), "--version"], capture_output=True, text=True, env=_env(), timeout=60)
    assert out.returncode == 0, out.stderr  # found through site-packages (the editable install's .pth)
    assert "version" in out.stdout


def test_install_writes_an_executable_launcher_and_refuses_a_missing_venv(tmp_path):
    with pytest.raises(FileNotFoundError, match="make setup"):
        launcher.install(str(tmp_path / "novenv"))
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    path = Path(launcher.install(str(venv)))
    assert os.access(path, os.X_OK) and launcher.is_launcher(str(path))
    assert path.read_text().startswith(f"#!{venv / 'bin' / 'python'} -S\n")
    assert launcher.main(["--venv", str(venv), "extra"]) == 2


def test_cluster_up_status_down_through_the_launcher(script, tmp_path):
    """The click path after site.main(): components start as their own Python processes."""
    name = f"launch{os.getpid()}"
    env = _env({"LABKIT_STATE": str(tmp_path / "state")})
    kc = tmp_path / "kubeconfig"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(script), "cluster", *args, "--name", name], capture_output=True, text=True,
                              env=env, timeout=120)

    up = run("up", "--nodes", "1", "--runtime", "simulated", "--store", "memory", "--kubeconfig", str(kc))
    try:
        assert up.returncode == 0, up.stderr
        assert f"cluster {name}: 1 node(s)" in up.stdout and kc.exists()
        status = run("status")
        assert status.returncode == 0, status.stderr
        assert "apiserver" in status.stdout and "Ready=True" in status.stdout
    finally:
        down = run("down")
    assert down.returncode == 0, down.stderr
    assert f"cluster {name} is down" in down.stdout


def test_after_the_fallback_python_looks_like_a_normal_start(tmp_path):
    """sys.path, the venv prefix, site's builtins and the .pth files' work: as a start with site."""
    probe = ("import builtins, json; print(json.dumps([sys.path[1:], sys.prefix, hasattr(builtins, 'exit'), "
             "sorted(k for k in sys.modules if k.startswith('_distutils'))]))")
    text = launcher.render(sys.executable, launcher.package_home())
    assert "sys.exit(group()())" in text
    path = tmp_path / "probe"
    path.write_text(text.replace("sys.exit(group()())", probe))
    path.chmod(0o755)
    normal = tmp_path / "normal"
    normal.write_text(f"#!{sys.executable}\nimport sys\n{probe}\n")
    normal.chmod(0o755)
    mine = subprocess.run([str(path), "--help"], capture_output=True, text=True, env=_env(), timeout=60)
    theirs = subprocess.run([str(normal)], capture_output=True, text=True, env=_env(), timeout=60)
    assert mine.returncode == theirs.returncode == 0, (mine.stderr, theirs.stderr)
    assert mine.stdout == theirs.stdout
