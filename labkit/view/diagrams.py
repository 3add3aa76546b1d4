"""The book's diagrams, drawn from code so they can never drift from the text or the package tree.

Each diagram is a function that returns a :class:`graphviz.Digraph`. ``labkit diagrams --out images``
(or ``python -m labkit.view.diagrams --out images``) writes ``NAME.dot`` (the DOT source) and
``NAME.svg`` (rendered from it) for every diagram. Different Graphviz builds (Debian's ``dot``, the
pip-only ``graphviz-pure``) lay out the same source into different SVG bytes, so freshness is judged
on the DOT source: :func:`stale` compares the committed ``.dot`` with what the code generates now,
and checks the ``.svg`` carries the hash of that ``.dot`` (written as a comment when rendering).

In a notebook, :func:`show` renders a diagram in place and :func:`tabs` puts several into an
ipywidgets ``Tab`` that still works in the static site (switching tabs needs no Python kernel).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import graphviz

FONT = "Helvetica"  # one name: graphviz-pure has metrics for it, Debian dot maps it to a sans font
HASH_MARK = "labkit-dot-sha256:"

# Colours: the Master, the Node, the kernel, the plug-ins, history.
MASTER = "#dbeafe"
NODE = "#dcfce7"
KERNEL = "#fde68a"
PLUGIN = "#fce7f3"
NEUTRAL = "#f3f4f6"

# Which labkit module implements each box of the global architecture, and which lab shows it.
# The architecture diagram and chapter 6 both read this table, so text and picture agree.
COMPONENTS: list[tuple[str, str, str]] = [
    ("kube-apiserver", "labkit.controlplane.apiserver", "labs/10-apiserver-and-store"),
    ("etcd", "labkit.controlplane.store", "labs/11-etcd"),
    ("kube-scheduler", "labkit.controlplane.scheduler", "labs/12-scheduler"),
    ("kube-controller-manager", "labkit.controlplane.controllers", "labs/13-controller-manager"),
    ("kubelet", "labkit.node.kubelet", "labs/14-life-of-a-pod"),
    ("CRI", "labkit.node.cri", "labs/20-cri"),
    ("container runtime", "labkit.runtime", "labs/05-one-image-many-runtimes"),
    ("OCI", "labkit.oci", "labs/01-container-is-a-process"),
    ("namespaces + cgroups", "Linux kernel", "labs/02-limits"),
    ("Device Plugin (gRPC)", "labkit.node.deviceplugin", "labs/23-device-plugin"),
    ("CNI", "labkit.node.cni", "labs/21-cni"),
    ("CSI", "labkit.node.csi", "labs/22-csi"),
]


def _graph(name: str, rankdir: str = "TB", **attrs: str) -> graphviz.Digraph:
    g = graphviz.Digraph(name)
    g.attr(rankdir=rankdir, fontname=FONT, fontsize="12", bgcolor="white", **attrs)
    g.attr("node", shape="box", style="rounded,filled", fillcolor=NEUTRAL, fontname=FONT, fontsize="11")
    g.attr("edge", fontname=FONT, fontsize="10", color="#374151")
    return g


def _label(title: str, module: str | None = None) -> str:
    """An HTML-like label: the Kubernetes name in bold, the labkit module under it."""
    if not module:
        return f"<<b>{title}</b>>"
    return f'<<b>{title}</b><br/><font point-size="9" color="#4b5563">{module}</font>>'


def _module(name: str) -> str:
    return next(m for c, m, _ in COMPONENTS if c == name)


def architecture() -> graphviz.Digraph:
    """The source text's global architecture (S9-S13), each box annotated with the labkit module behind it."""
    g = _graph("architecture", rankdir="TB", nodesep="0.3", ranksep="0.4")
    g.node("user", _label("kubectl / kubernetes client", "labkit.client"), shape="box", style="filled",
           fillcolor="white")
    with g.subgraph(name="cluster_master") as m:
        m.attr(label="Master (control plane)", style="rounded,filled", fillcolor="#eff6ff", color="#3b82f6")
        m.attr("node", fillcolor=MASTER)
        with m.subgraph() as row:
            row.attr(rank="same")
            row.node("scheduler", _label("kube-scheduler", _module("kube-scheduler")))
            row.node("apiserver", _label("kube-apiserver", _module("kube-apiserver")))
            row.node("controllers", _label("kube-controller-manager", _module("kube-controller-manager")))
        m.node("etcd", _label("etcd", _module("etcd")), shape="cylinder", style="filled")
    with g.subgraph(name="cluster_node") as n:
        n.attr(label="Node (worker)", style="rounded,filled", fillcolor="#f0fdf4", color="#22c55e")
        n.attr("node", fillcolor=NODE)
        n.node("kubelet", _label("kubelet", _module("kubelet")))
        with n.subgraph() as row:
            row.attr(rank="same")
            row.node("cri", _label("CRI", _module("CRI")), shape="cds", style="filled")
            row.node("deviceplugin", _label("Device Plugin", _module("Device Plugin (gRPC)")), fillcolor=PLUGIN)
            row.node("cni", _label("CNI plugin", _module("CNI")), fillcolor=PLUGIN)
            row.node("csi", _label("CSI driver", _module("CSI")), fillcolor=PLUGIN)
        n.node("runtime", _label("container runtime (Docker, ...)", _module("container runtime")))
        n.node("oci", _label("OCI runtime (runc, ...)", _module("OCI")))
        n.node("kernel", _label("Linux namespaces + cgroups"), fillcolor=KERNEL)
        n.node("gpu", "GPUs, devices", shape="box3d", style="filled", fillcolor=NEUTRAL)
        n.node("net", "pod network", shape="box3d", style="filled", fillcolor=NEUTRAL)
        n.node("disk", "persistent volumes", shape="box3d", style="filled", fillcolor=NEUTRAL)
    g.edge("user", "apiserver", label=" REST API")
    g.edge("apiserver", "etcd", label=" persists", dir="both")
    g.edge("scheduler", "apiserver", label="watch\\n+ bind")
    g.edge("apiserver", "controllers", label="watch\\n+ write", dir="back")
    g.edge("etcd", "kubelet", style="invis")
    g.edge("apiserver", "kubelet", label=" watch pods, report status", dir="back", constraint="false")
    g.edge("kubelet", "cri", label=" gRPC")
    g.edge("cri", "runtime")
    g.edge("runtime", "oci", label=" config.json")
    g.edge("oci", "kernel", label=" syscalls")
    g.edge("kubelet", "deviceplugin", label=" gRPC")
    g.edge("kubelet", "cni", label=" exec")
    g.edge("kubelet", "csi", label=" gRPC")
    g.edge("deviceplugin", "gpu")
    g.edge("cni", "net")
    g.edge("csi", "disk")
    return g


def _table(title: str, colour: str, rows: list[str], module: str = "") -> str:
    """An HTML-like table label: a titled box with one row per item."""
    head = f'<tr><td bgcolor="{colour}"><b>{title}</b></td></tr>'
    body = "".join(f'<tr><td align="left">{r}</td></tr>' for r in rows)
    foot = f'<tr><td border="0"><font point-size="9" color="#4b5563">{module}</font></td></tr>' if module else ""
    return f'<<table border="0" cellborder="1" cellspacing="0" cellpadding="5">{head}{body}{foot}</table>>'


def container() -> graphviz.Digraph:
    """What a container is: one ordinary process, fenced by namespaces, cgroups and its own root."""
    g = _graph("container", rankdir="TB", nodesep="0.4", ranksep="0.5")
    g.node("proc", _label("a process: PID 1 inside, an ordinary PID outside", "labkit.oci / labkit.runtime"),
           fillcolor=NODE)
    g.node("ns", _table("namespaces: what it can see", MASTER, [
        "pid: its own process tree", "mnt: its own mounts", "uts: its own hostname",
        "net: its own interfaces, IPs", "ipc: its own shared memory", "user: its own user ids",
        "cgroup: its own view of cgroups"], "kernel: clone / unshare / setns"), shape="plain", style="")
    g.node("cg", _table("cgroups: how much it may use", KERNEL, [
        "memory limit (then OOM kill)", "CPU quota per period", "pids limit", "counters: usage, failcnt"],
        "kernel: /sys/fs/cgroup (v1 or v2)"), shape="plain", style="")
    g.node("rootfs", _table("its own root filesystem: what it runs", PLUGIN, [
        "image layers, read-only, shared", "one writable upper layer (overlayfs)",
        "pivot_root into it", "/proc and a minimal /dev"], "labkit.images"), shape="plain", style="")
    g.edge("proc", "ns", arrowhead="none", color="#3b82f6")
    g.edge("proc", "cg", arrowhead="none", color="#f59e0b")
    g.edge("proc", "rootfs", arrowhead="none", color="#22c55e")
    return g


def image_supply_chain() -> graphviz.Digraph:
    """S1: the image ties a developer to whoever runs it; every stop on the way is a business."""
    g = _graph("image_supply_chain", rankdir="LR", nodesep="0.3")
    g.node("dev", _label("developer"), shape="oval", style="filled", fillcolor="white")
    g.node("image", _label("container image", "one digest: sha256:..."), shape="folder", style="filled",
           fillcolor=PLUGIN)
    g.node("registry", _label("registry"), shape="cylinder", style="filled")
    g.node("cloud", _label("cloud / infrastructure provider", "runs the image as containers"), fillcolor=MASTER)
    g.node("users", _label("the developer's users"), shape="oval", style="filled", fillcolor="white")
    g.edge("dev", "image", label=" build")
    g.edge("image", "registry", label=" push")
    g.edge("registry", "cloud", label=" pull + run")
    g.edge("cloud", "users", label=" serve")
    with g.subgraph(name="cluster_path") as p:
        p.attr(label="services along the path (each one a market)", style="rounded,dashed", color="#9ca3af")
        p.attr("node", fillcolor=NODE, shape="box")
        for s in ["CI/CD", "security scanning", "monitoring", "network", "storage"]:
            p.node("svc_" + s.split()[0].replace("/", ""), s)
    g.edge("svc_CICD", "image", style="dashed", arrowhead="none")
    g.edge("svc_security", "registry", style="dashed", arrowhead="none")
    g.edge("svc_monitoring", "cloud", style="dashed", arrowhead="none")
    g.edge("svc_network", "cloud", style="dashed", arrowhead="none")
    g.edge("svc_storage", "cloud", style="dashed", arrowhead="none")
    return g


def landscape() -> graphviz.Digraph:
    """The orchestration landscape and its lineage, 2003-2019 (S3, S4, S5)."""
    g = _graph("landscape", rankdir="TB", nodesep="0.25", ranksep="0.45")
    with g.subgraph(name="cluster_google") as c:
        c.attr(label="Google lineage", style="rounded", color="#3b82f6")
        c.attr("node", fillcolor=MASTER)
        c.node("borg", _label("Borg", "internal since ~2004; paper April 2015"))
        c.node("omega", _label("Omega", "paper EuroSys 2013"))
        c.node("k8s", _label("Kubernetes", "announced June 2014; 1.0 July 2015"))
        c.node("cncf", _label("CNCF", "founded 2015; Kubernetes its first project"))
    with g.subgraph(name="cluster_docker") as c:
        c.attr(label="Docker, Inc.", style="rounded", color="#22c55e")
        c.attr("node", fillcolor=NODE)
        c.node("docker", _label("Docker", "released March 2013"))
        c.node("fig", _label("Fig", "Orchard Labs, 2013"))
        c.node("compose", _label("Docker Compose", "Fig's successor, Dec 2014"))
        c.node("swarm", _label("Docker Swarm", "announced Dec 2014"))
        c.node("swarmmode", _label("swarm mode", "built into Docker 1.12, 2016"))
    with g.subgraph(name="cluster_mesos") as c:
        c.attr(label="UC Berkeley / Apache", style="rounded", color="#f59e0b")
        c.attr("node", fillcolor=KERNEL)
        c.node("mesos", _label("Mesos", "Berkeley ~2009; Apache top-level 2013"))
        c.node("marathon", _label("Marathon", "long-running apps on Mesos"))
    with g.subgraph(name="cluster_paas") as c:
        c.attr(label="classic PaaS", style="rounded", color="#9ca3af")
        c.node("cf", _label("Cloud Foundry", "2011"))
    g.edge("borg", "omega", label=" ideas")
    g.edge("borg", "k8s", label=" lessons (Master)")
    g.edge("omega", "k8s", label=" shared state")
    g.edge("k8s", "cncf", label=" donated")
    g.edge("docker", "fig", label=" one host, many containers")
    g.edge("fig", "compose", label=" Docker buys\\n Orchard, 2014")
    g.edge("docker", "swarm", label=" many hosts")
    g.edge("swarm", "swarmmode")
    g.edge("compose", "swarmmode", label=" stack deploy", style="dashed")
    g.edge("mesos", "marathon", label=" two-level:\\n resource offers")
    g.edge("docker", "k8s", label=" just the runtime", style="dashed")
    g.edge("docker", "marathon", label=" containerizer", style="dashed")
    g.edge("cf", "k8s", label=" PaaS features\\n users expect", style="dotted")
    return g


def google_stack() -> graphviz.Digraph:
    """Google's published infrastructure (the source text's first figure): Borg at the very bottom (S4).

    Drawn as a stack: each row is a layer of systems Google described in papers (year of the
    paper in brackets), and each layer runs on the ones below it.
    """
    g = _graph("google_stack", rankdir="TB")
    layers = [
        ("monitoring", NEUTRAL, ["Dapper (2010)"]),
        ("data processing", MASTER, ["MapReduce (2004)", "FlumeJava (2010)", "Pregel (2010)", "Dremel (2010)",
                                     "MillWheel (2013)"]),
        ("databases", NODE, ["F1 (2013): a distributed SQL database built on Spanner"]),
        ("storage", NODE, ["GFS (2003) / Colossus", "BigTable (2006)", "Megastore (2011)", "Spanner (2012)"]),
        ("coordination", PLUGIN, ["Chubby lock service (2006)"]),
        ("cluster management", KERNEL, ["<b>Borg</b> (in use since ~2004; paper April 2015) - runs everything above"]),
        ("hardware", "white", ["machines in Google's data centres"]),
    ]
    width = 12  # grid columns; every layer's cells share them evenly
    rows = []
    for title, colour, cells in layers:
        span = width // len(cells)
        tds = "".join(f'<td colspan="{span}" bgcolor="{colour}" cellpadding="6">{c}</td>' for c in cells)
        rows.append(f'<tr><td align="right" border="0"><i>{title}</i></td>{tds}</tr>')
    table = '<<table border="0" cellborder="1" cellspacing="3" style="rounded">' + "".join(rows) + "</table>>"
    g.node("stack", table, shape="plain", style="")
    return g


def borg_to_kubernetes() -> graphviz.Digraph:
    """S14: where Borg's lessons went (the Master) and what is new (the kubelet, containers)."""
    g = _graph("borg_to_kubernetes", rankdir="LR", nodesep="0.2", ranksep="1.2")
    pairs = [
        ("Borgmaster (API, state machine)", "kube-apiserver + kube-controller-manager", "solid"),
        ("Borg scheduler (feasibility, scoring)", "kube-scheduler (filter, score)", "solid"),
        ("Paxos-replicated store", "etcd (Raft)", "solid"),
        ("job / task", "Deployment, Job / Pod", "solid"),
        ("alloc", "Pod (shared namespaces)", "solid"),
        ("priority, quota", "PriorityClass, ResourceQuota", "solid"),
        ("Borglet (runs tasks, no containers as we know them)", "kubelet (written anew for containers)", "dashed"),
        ("package of binaries + data", "container image (just a new package format)", "dashed"),
    ]
    with g.subgraph(name="cluster_borg") as b:
        b.attr(label="Borg (Google, internal)", style="rounded", color="#f59e0b")
        b.attr("node", fillcolor=KERNEL)
        for i, (left, _, _) in enumerate(pairs):
            b.node(f"b{i}", left)
    with g.subgraph(name="cluster_k8s") as k:
        k.attr(label="Kubernetes", style="rounded", color="#3b82f6")
        k.attr("node", fillcolor=MASTER)
        for i, (_, right, _) in enumerate(pairs):
            k.node(f"k{i}", right, fillcolor=NODE if i >= 6 else MASTER)
    for i, (_, _, style) in enumerate(pairs):
        g.edge(f"b{i}", f"k{i}", style=style, label=" lesson" if style == "solid" else " new")
    return g


def cri_backends() -> graphviz.Digraph:
    """S16: the runtime sits at the bottom behind one interface, so it can be swapped."""
    g = _graph("cri_backends", rankdir="TB", nodesep="0.3")
    g.node("master", _label("Master", "never talks to a runtime"), fillcolor=MASTER)
    g.node("kubelet", _label("kubelet", "labkit.node.kubelet"), fillcolor=NODE)
    g.node("cri", _label("CRI: RunPodSandbox, CreateContainer, ...", "labkit.runtime.base / labkit.node.cri"),
           shape="cds", style="filled", fillcolor=NODE)
    backends = [("native", "labkit's own (pivot_root, cgroups)"), ("oci", "runc / crun"),
                ("docker", "Docker Engine"), ("simulated", "no isolation; for scale")]
    for key, what in backends:
        g.node(key, _label(key, what), fillcolor=PLUGIN)
        g.edge("cri", key)
    g.edge("master", "kubelet", label=" pods (via the API)")
    g.edge("kubelet", "cri")
    return g


def swarm() -> graphviz.Digraph:
    """Docker Swarm: managers agree through Raft and hand tasks to workers."""
    g = _graph("swarm", rankdir="TB", nodesep="0.3")
    g.node("cli", _label("docker stack deploy", "a Compose file"), shape="note", style="filled", fillcolor="white")
    with g.subgraph(name="cluster_managers") as m:
        m.attr(label="managers (Raft)", style="rounded", color="#22c55e")
        m.attr("node", fillcolor=NODE)
        for i in range(3):
            m.node(f"m{i}", f"manager {i + 1}")
    for i in range(3):
        g.node(f"w{i}", f"worker {i + 1}\\n(Docker Engine)", fillcolor=PLUGIN)
        g.edge("m0", f"w{i}", label=" task")
    g.edge("cli", "m0", label=" service")
    g.edge("m0", "m1", dir="both", style="dashed")
    g.edge("m1", "m2", dir="both", style="dashed")
    return g


def mesos() -> graphviz.Digraph:
    """Mesos: the master offers resources; each framework's own scheduler decides (two-level)."""
    g = _graph("mesos", rankdir="TB", nodesep="0.4")
    for key, name in [("marathon", "Marathon (services)"), ("spark", "Spark (batch)")]:
        g.node(key, _label(name, "framework scheduler"), fillcolor=MASTER)
    g.node("master", _label("Mesos master", "allocator (DRF)"), fillcolor=KERNEL)
    for key in ("marathon", "spark"):
        g.edge(key, "master", label=" 1. resource offer", dir="back")
        g.edge(key, "master", label=" 2. accept: tasks", style="dashed")
    for i in range(2):
        g.node(f"a{i}", f"agent {i + 1}\\n(executors run tasks)", fillcolor=PLUGIN)
        g.edge("master", f"a{i}", label=" 3. launch tasks")
        g.edge("master", f"a{i}", label=" free resources", style="dotted", dir="back")
    return g


def kubernetes() -> graphviz.Digraph:
    """Kubernetes: every component watches and writes one API; the scheduler picks a node per pod."""
    g = _graph("kubernetes", rankdir="TB", nodesep="0.4")
    g.node("sched", _label("kube-scheduler", "filter, then score every node"), fillcolor=MASTER)
    g.node("ctrl", _label("controllers", "ReplicaSet, Deployment, node, GC"), fillcolor=MASTER)
    with g.subgraph() as row:
        row.attr(rank="same")
        row.node("api", _label("kube-apiserver", "desired + actual state"), fillcolor=MASTER)
        row.node("etcd", "etcd", shape="cylinder", style="filled", fillcolor=MASTER)
    g.edge("api", "etcd", dir="both")
    g.edge("sched", "api", label=" bind pod to node")
    g.edge("ctrl", "api", label=" make actual = desired")
    for i in range(2):
        g.node(f"k{i}", f"node {i + 1}\\n(kubelet runs its pods)", fillcolor=NODE)
        g.edge("api", f"k{i}", label=" watch my pods,\\n report status", dir="back")
    return g


DIAGRAMS: dict[str, Callable[[], graphviz.Digraph]] = {
    "architecture": architecture,
    "container": container,
    "image_supply_chain": image_supply_chain,
    "landscape": landscape,
    "google_stack": google_stack,
    "borg_to_kubernetes": borg_to_kubernetes,
    "cri_backends": cri_backends,
    "swarm": swarm,
    "mesos": mesos,
    "kubernetes": kubernetes,
}


class DotNotFound(RuntimeError):
    """No Graphviz renderer on this host."""


def dot_binary() -> str:
    """Find a Graphviz renderer: ``dot`` on PATH, or the pip-only ``graphviz-pure`` beside Python."""
    here = Path(sys.executable).parent
    for candidate in (shutil.which("dot"), here / "dot", here / "graphviz-pure", shutil.which("graphviz-pure")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise DotNotFound(
        "no Graphviz 'dot' found: install Debian's graphviz (apt-get install graphviz) "
        "or the pip package graphviz-pure (pip install graphviz-pure), then try again"
    )


def source(name: str) -> str:
    """The DOT source of one diagram, exactly as it is committed next to its SVG."""
    try:
        make = DIAGRAMS[name]
    except KeyError:
        raise KeyError(f"no diagram named {name!r}; choose one of: {', '.join(DIAGRAMS)}") from None
    return make().source


def dot_hash(dot_source: str) -> str:
    return hashlib.sha256(dot_source.encode()).hexdigest()


def render_svg(dot_source: str) -> str:
    """Render DOT to SVG text and stamp it with the hash of the source it came from."""
    proc = subprocess.run([dot_binary(), "-Tsvg"], input=dot_source.encode(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"Graphviz failed: {proc.stderr.decode(errors='replace').strip()}")
    svg = proc.stdout.decode()
    stamp = f"<!-- {HASH_MARK}{dot_hash(dot_source)} -->\n"
    head, sep, rest = svg.partition("?>\n")
    return head + sep + stamp + rest if sep else stamp + svg


def render_all(out: Path | str, names: list[str] | None = None) -> list[Path]:
    """Write NAME.dot and NAME.svg for each diagram into ``out``; return the written paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names or list(DIAGRAMS):
        src = source(name)
        (out / f"{name}.dot").write_text(src)
        (out / f"{name}.svg").write_text(render_svg(src))
        written += [out / f"{name}.dot", out / f"{name}.svg"]
    return written


def stale(out: Path | str) -> dict[str, str]:
    """Diagrams whose committed files no longer match the code: name -> why."""
    out = Path(out)
    problems = {}
    for name in DIAGRAMS:
        dot_file, svg_file = out / f"{name}.dot", out / f"{name}.svg"
        if not dot_file.exists() or not svg_file.exists():
            problems[name] = "missing .dot or .svg"
            continue
        committed = dot_file.read_text()
        if committed != source(name):
            problems[name] = ".dot differs from the code"
        elif f"{HASH_MARK}{dot_hash(committed)}" not in svg_file.read_text():
            problems[name] = ".svg was not rendered from this .dot"
    return problems


def show(name: str):
    """Render one diagram for a notebook cell (an IPython SVG object)."""
    from IPython.display import SVG

    return SVG(data=render_svg(source(name)))


def tabs(names: list[str], captions: dict[str, str] | None = None):
    """An ipywidgets Tab with one diagram per tab.

    Switching tabs happens in the browser, so the widget keeps working in the static site
    where no Python kernel is running.
    """
    import ipywidgets as widgets

    captions = captions or {}
    children = []
    for name in names:
        svg = render_svg(source(name))
        # Inline SVG: drop the XML prologue and Graphviz's <title> elements (they become tooltips).
        svg = re.sub(r"<title>.*?</title>", "", svg[svg.index("<svg"):], flags=re.S)
        text = captions.get(name, "")
        children.append(widgets.HTML(value=f"<div>{svg}</div><p>{text}</p>"))
    tab = widgets.Tab(children=children)
    for i, name in enumerate(names):
        tab.set_title(i, name.replace("_", " ").title())
    return tab


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the book's diagrams into .dot and .svg files.")
    parser.add_argument("--out", default="images", help="folder for NAME.dot and NAME.svg (default: images)")
    parser.add_argument("--check", action="store_true", help="only report stale diagrams; exit 1 if any")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale(args.out)
        for name, why in problems.items():
            print(f"stale: {name}: {why}")
        return 1 if problems else 0
    try:
        for path in render_all(args.out):
            print(path)
    except DotNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
