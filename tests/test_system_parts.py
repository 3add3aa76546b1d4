"""The manifest of system parts (labkit/system_parts.tsv) names every program the project runs.

A program that labkit, a lab, a test, a benchmark or a script executes without a row in the manifest
is a missing install step on a new machine (issue 8: etcdctl came from a package nobody installed).
The scan below reads the code the way a reviewer would: the first word of every argv handed to
subprocess / os.exec* (and the helpers that wrap them), every ``shutil.which("NAME")``, every CNI
plugin asked for by name, every hard-coded path under a program folder, and the commands of the
shell scripts.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from labkit import system_parts

REPO = Path(__file__).resolve().parents[1]
TOPS = ("labkit", "labs", "chapters", "tests", "benchmarks", "scripts")
# callables that run their first argument: subprocess's, os.exec*, and labkit's thin wrappers
RUNNERS = re.compile(r"^(_?run|Popen|call|check_call|check_output|create_subprocess_exec|exec[lv]p?e?|_ip|in_netns)$")
PROGRAM = re.compile(r"^(/[\w./*-]+|[A-Za-z][\w.+-]*)$")
PROGRAM_DIRS = ("/usr/lib/cni", "/opt/cni/bin", "/usr/libexec/cni", "/usr/lib/google-cloud-sdk/bin",
                "/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/")
# argv words that are a container's own program (run inside its rootfs), not the host's
IN_CONTAINER = {"/bin/sh", "/bin/true", "/bin/vi", "/hello.sh"}
SHELL_WORDS = {"if", "then", "else", "elif", "fi", "for", "while", "do", "done", "case", "esac", "in", "function",
               "return", "exit", "set", "cd", "echo", "printf", "read", "local", "export", "declare", "shift",
               "source", "test", "true", "false", "break", "continue", "trap", "wait", "mapfile", "command",
               "compgen", "kill", "seq", "awk", "tr", "grep", "tail", "head", "rm", "chmod", "nohup", "id",
               "pidof", "systemctl", "dirname", "pwd", "sleep", "cat", "env", "ln", "mkdir", "exec", "eval"}
SH_BASE = {"seq", "awk", "tr", "grep", "tail", "head", "rm", "chmod", "nohup", "id", "pidof", "systemctl",
           "dirname", "pwd", "sleep", "cat", "env", "ln", "mkdir", "kill"}  # coreutils, procps, gawk ...


def code_cells(markdown: str) -> list[str]:
    """The Python of a MyST page's code cells (cell options, front matter and magics left out)."""
    cells, inside, buf = [], False, []
    for line in markdown.splitlines():
        if not inside and line.startswith("```{code-cell}"):
            inside, buf = True, []
        elif inside and line.startswith("```"):
            inside = False
            while buf and re.match(r"^:[\w-]+:", buf[0]):
                buf.pop(0)
            if buf and buf[0].strip() == "---":
                buf = buf[buf.index("---", 1) + 1:]
            cells.append("\n".join(x for x in buf if not x.lstrip().startswith(("%", "!"))))
        elif inside:
            buf.append(line)
    return cells


def _const(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _argv_programs(node: ast.AST) -> set[str]:
    """Programs in an argv literal: its first word, and the word after ``--`` or ``ip netns exec NS``."""
    if not isinstance(node, (ast.List, ast.Tuple)) or not node.elts:
        return set()
    words = [_const(e) for e in node.elts]
    found = {words[0]} if words[0] else set()
    found |= {words[i + 1] for i, w in enumerate(words[:-1]) if w == "--" and words[i + 1]}
    if words[:3] == ["ip", "netns", "exec"] and len(words) > 4 and words[4]:
        found.add(words[4])
    return {w for w in found if PROGRAM.match(w)}


def python_programs(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            on_self = isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "self"
            args = node.args
            if name == "which" and args and _const(args[0]):
                found.add(_const(args[0]))  # type: ignore[arg-type]
            elif name == "have_plugins":
                found |= {"/usr/lib/cni/" + c for c in map(_const, args) if c}
            elif RUNNERS.match(name) and args and not on_self:
                found |= _argv_programs(args[0])
                if _const(args[0]) and any(k.arg == "shell" for k in node.keywords):
                    found.add(_const(args[0]).split()[0])  # type: ignore[union-attr]
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in ("argv", "cmd", "command")
                                                  for t in node.targets):
            found |= _argv_programs(node.value)
        elif (c := _const(node)) and c.startswith(PROGRAM_DIRS) and PROGRAM.match(c) and c not in IN_CONTAINER:
            found.add(c)
    return found - IN_CONTAINER


def shell_programs(text: str) -> set[str]:
    """Command words of a bash script: the first word of each command (not builtins, not assignments)."""
    found = set()
    text = re.sub(r"(^|\s)#.*", "", text)                 # comments
    text = re.sub(r"\$\(\([^)]*\)\)", "", text)             # arithmetic
    text = re.sub(r"'[^']*'", "''", text)                  # single-quoted text (awk programs too)
    text = re.sub(r'"[^"]*"', lambda m: " ".join(re.findall(r"\$\([^)]*\)", m.group(0))), text)
    functions = set(re.findall(r"^\s*([\w-]+)\(\)\s*\{", text, re.M))
    for m in re.finditer(r"(?:^|[;&|({]|\$\(|\bthen\b|\bdo\b|\belse\b|!)\s*([A-Za-z][\w.+-]*)(?=\s|$|\))", text, re.M):
        word = m.group(1)
        if word not in SHELL_WORDS | functions and not re.match(r"^\w+=", word):
            found.add(word)
    return found


def scan() -> dict[str, set[str]]:
    """Program -> the files that run it, over the whole project."""
    where: dict[str, set[str]] = {}
    for top in TOPS:
        for path in sorted((REPO / top).rglob("*")):
            rel = str(path.relative_to(REPO))
            if path.suffix == ".py":
                progs = python_programs(ast.parse(path.read_text()))
            elif path.suffix == ".md":
                text = path.read_text()
                progs = set().union(*(python_programs(ast.parse(c)) for c in code_cells(text)), needs_words(text))
            elif path.suffix == ".sh" or (path.parent.name == ".ci"):
                progs = shell_programs(path.read_text())
            else:
                continue
            for p in progs:
                where.setdefault(p, set()).add(rel)
    return where


def needs_words(markdown: str) -> set[str]:
    """Programs a lab cell names in ``%%needs`` (labkit.view.needs looks each up in the manifest)."""
    return {w for line in re.findall(r"^%%needs (.*)$", markdown, re.M) for w in line.split() if w != "root"}


def in_manifest(program: str) -> bool:
    if program in SH_BASE:
        return True
    for p in system_parts.parts():
        places = (p.program, *p.also)
        if program in (p.program, p.name) or program in p.also:
            return True
        if program.startswith("/") and any(x.startswith(program.rstrip("/") + "/") or x.startswith(program)
                                           for x in places):
            return True
    return False


def test_the_scan_finds_what_the_code_runs():
    """The scan itself works: it sees programs the project is known to run (else it would pass vacuously)."""
    found = scan()
    for program in ("etcdctl", "ip", "nsenter", "docker", "/usr/lib/cni/bridge", "mount", "runc", "apt-get"):
        assert program in found, f"the scan no longer finds {program}"


def test_every_program_the_project_runs_is_in_the_manifest():
    missing = {p: sorted(files) for p, files in scan().items() if not in_manifest(p)}
    assert not missing, ("programs run by the code but missing from labkit/system_parts.tsv (add a row with "
                         f"their Debian package): {missing}")


def test_etcdctl_comes_from_etcd_client_and_the_hint_says_so():
    assert system_parts.part("etcdctl").package == "etcd-client"
    assert system_parts.part("etcd").package == "etcd-server"
    assert "apt-get install etcd-client" in system_parts.not_installed("etcdctl")
    assert system_parts.part("ip").package == "iproute2"
    assert system_parts.part("/usr/lib/cni/bridge").package == "containernetworking-plugins"
    assert "etcd-client" in system_parts.book_packages()


def test_no_hint_in_labkit_names_a_package_the_manifest_does_not_give():
    """A hand-written `apt-get install X` must name X as the manifest does (pip install is fine)."""
    packages = {p.package for p in system_parts.parts()}
    wrong = []
    for path in (REPO / "labkit").rglob("*.py"):
        for pkg in re.findall(r"apt-get install ([\w.+-]+)", path.read_text()):
            if pkg not in packages:
                wrong.append(f"{path.relative_to(REPO)}: apt-get install {pkg}")
    assert not wrong, wrong


def test_setup_installs_every_book_package_from_the_manifest():
    """setup-system.sh, on a machine with none of the parts, would install every book package."""
    out = subprocess.run(["bash", str(REPO / "scripts/setup-system.sh"), "--missing"], capture_output=True,
                         text=True, env=dict(os.environ, LABKIT_HIDE_PARTS="book"), timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == system_parts.book_packages()
    assert "etcd-client" in out.stdout.split()


def test_hidden_parts_are_reported_missing_with_package_and_labs(monkeypatch):
    """``LABKIT_HIDE_PARTS`` makes a part look absent; doctor's line names the package and the labs."""
    monkeypatch.setenv(system_parts.HIDE_ENV, "etcdctl,ip")
    assert system_parts.which("etcdctl") is None and system_parts.which("/usr/sbin/ip") is None
    lines = {r.name: r for r in system_parts.reports()}
    assert not lines["etcdctl"].ok and "apt-get install etcd-client" in lines["etcdctl"].detail
    assert "lab 11" in lines["etcdctl"].why
    assert "apt-get install iproute2" in lines["ip"].detail and "lab 21" in lines["ip"].why


def test_doctor_as_a_user_without_the_parts_names_each_missing_part():
    """`labkit doctor` with every book part hidden: one line per part, its package, the labs that fall back."""
    env = dict(os.environ, LABKIT_HIDE_PARTS="book", LABKIT_PRETEND_NOT_ROOT="1",
               DOCKER_HOST="unix:///nonexistent/docker.sock")
    out = subprocess.run([sys.executable, "-m", "labkit.cli", "doctor"], capture_output=True, text=True,
                         env=env, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    for package in ("etcd-client", "etcd-server", "iproute2", "containernetworking-plugins", "runc", "crun"):
        assert f"apt-get install {package}" in out.stdout, out.stdout
    assert "lab 11" in out.stdout and "lab 21" in out.stdout
    assert "default runtime:" in out.stdout


def test_a_cell_that_needs_a_missing_part_says_so_in_one_line(monkeypatch, capsys):
    from labkit.view import needs

    monkeypatch.setenv(system_parts.HIDE_ENV, "etcdctl")
    monkeypatch.setenv("LABKIT_PRETEND_NOT_ROOT", "1")
    assert needs.needs("root", "etcd", "etcdctl") is False
    said = capsys.readouterr().out
    assert said.count("\n") == 1 and said.startswith("skipped: ")
    assert "not root" in said and "apt-get install etcd-client" in said and "make setup" in said
    monkeypatch.delenv("LABKIT_PRETEND_NOT_ROOT")
    monkeypatch.delenv(system_parts.HIDE_ENV)
    assert needs.needs("sh") is True and capsys.readouterr().out == ""
