"""A live picture of a cluster in a notebook: nodes as boxes, pods as coloured chips inside them.

The view is an ipywidgets ``HTML`` widget fed by two watches (nodes and pods) on background
threads, through the official Python client, so it works on labkit's cluster and on any other.
Each change re-renders the picture. Because it is a plain widget value, the last picture is saved
in the notebook's widget state and still renders in the static book with no kernel.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

PHASE_COLOURS = {"Running": "#2e7d32", "Pending": "#f9a825", "Succeeded": "#1565c0", "Failed": "#c62828",
                 "Terminating": "#757575", "Unknown": "#6a1b9a"}


def pod_state(pod: Any) -> str:
    if pod.metadata.deletion_timestamp:
        return "Terminating"
    return pod.status.phase or "Pending"


def render(nodes: dict[str, Any], pods: dict[str, Any], title: str = "", events: int = 0) -> str:
    """The picture as HTML: one box per node (Ready, runtime) holding its pods; unscheduled pods apart."""
    by_node: dict[str, list] = {n: [] for n in sorted(nodes)}
    pending: list = []
    for p in sorted(pods.values(), key=lambda p: p.metadata.name):
        (by_node.setdefault(p.spec.node_name, []) if p.spec.node_name else pending).append(p)

    def chip(p: Any) -> str:
        st = pod_state(p)
        return (f'<span title="{html.escape(p.metadata.namespace)}/{html.escape(p.metadata.name)}: {st}" '
                f'style="display:inline-block;margin:2px;padding:2px 6px;border-radius:10px;color:white;'
                f'font:11px monospace;background:{PHASE_COLOURS.get(st, "#444")}">'
                f"{html.escape(p.metadata.name)}</span>")

    boxes = []
    for name, ps in by_node.items():
        n = nodes.get(name)
        ready, runtime, taints = "?", "", ""
        if n is not None:
            ready = next((c.status for c in n.status.conditions or [] if c.type == "Ready"), "?")
            runtime = (n.status.node_info.container_runtime_version if n.status.node_info else "") or ""
            taints = ", ".join(f"{t.key}:{t.effect}" for t in n.spec.taints or [])
        border = "#2e7d32" if ready == "True" else "#c62828"
        boxes.append(
            f'<div style="border:2px solid {border};border-radius:6px;padding:6px;margin:4px;min-width:180px;'
            f'vertical-align:top;display:inline-block;max-width:320px">'
            f'<div style="font:bold 12px sans-serif">{html.escape(name)} '
            f'<span style="font-weight:normal;color:{border}">Ready={html.escape(ready)}</span></div>'
            f'<div style="font:10px monospace;color:#555">{html.escape(runtime)}</div>'
            + (f'<div style="font:10px monospace;color:#c62828">{html.escape(taints)}</div>' if taints else "")
            + f'<div>{"".join(chip(p) for p in ps) or "<i style=font-size:11px>no pods</i>"}</div></div>')
    if pending:
        boxes.append('<div style="border:2px dashed #f9a825;border-radius:6px;padding:6px;margin:4px;'
                     'display:inline-block"><div style="font:bold 12px sans-serif">not scheduled</div>'
                     + "".join(chip(p) for p in pending) + "</div>")
    counts: dict[str, int] = {}
    for p in pods.values():
        counts[pod_state(p)] = counts.get(pod_state(p), 0) + 1
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no pods"
    head = (f'<div style="font:12px sans-serif;margin:4px">{html.escape(title)} '
            f"{len(nodes)} node(s), {summary}; {events} watch event(s) applied</div>")
    return head + "<div>" + "".join(boxes) + "</div>"


class ClusterView:
    """``ClusterView(core).start()`` shows and updates; ``stop()`` ends the watches and keeps the last picture."""

    def __init__(self, core: Any, namespace: str | None = None, title: str = "", min_interval: float = 0.1):
        import ipywidgets as widgets

        self.core = core
        self.namespace = namespace
        self.title = title
        self.min_interval = min_interval
        self.widget = widgets.HTML(value="<i>starting...</i>")
        self.nodes: dict[str, Any] = {}
        self.pods: dict[str, Any] = {}
        self.events = 0
        self.history: list[tuple[float, str, str, str]] = []  # (time, kind, type, name)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._watches: list = []
        self._last = 0.0

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def refresh(self) -> None:
        """List everything again and redraw (what the watches keep up to date between calls)."""
        nodes = {n.metadata.name: n for n in self.core.list_node().items}
        lst = (self.core.list_namespaced_pod(self.namespace) if self.namespace
               else self.core.list_pod_for_all_namespaces())
        with self._lock:
            self.nodes = nodes
            self.pods = {f"{p.metadata.namespace}/{p.metadata.name}": p for p in lst.items}
        self._draw(force=True)

    def _draw(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        with self._lock:
            self.widget.value = render(self.nodes, self.pods, self.title, self.events)

    def _list(self, kind: str) -> tuple[Any, tuple]:
        """The client method and its positional arguments (the watch reads the method's return type)."""
        if kind == "nodes":
            return self.core.list_node, ()
        if self.namespace:
            return self.core.list_namespaced_pod, (self.namespace,)
        return self.core.list_pod_for_all_namespaces, ()

    def _key(self, kind: str, obj: Any) -> str:
        return obj.metadata.name if kind == "nodes" else f"{obj.metadata.namespace}/{obj.metadata.name}"

    def _watch(self, kind: str) -> None:
        """List once, then follow the watch from that resourceVersion; list again only after a 410."""
        from kubernetes import watch

        fn, args = self._list(kind)
        rv = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    lst = fn(*args)
                    with self._lock:
                        fresh = {self._key(kind, o): o for o in lst.items}
                        if kind == "nodes":
                            self.nodes = fresh
                        else:
                            self.pods = fresh
                    rv = lst.metadata.resource_version
                    self._draw(force=True)
                w = watch.Watch()
                self._watches.append(w)
                for ev in w.stream(fn, *args, resource_version=rv, timeout_seconds=2):
                    if self._stop.is_set():
                        break
                    obj, typ = ev["object"], ev["type"]
                    if typ == "ERROR":
                        rv = None
                        break
                    rv = obj.metadata.resource_version or rv
                    if typ == "BOOKMARK":
                        continue
                    key = self._key(kind, obj)
                    with self._lock:
                        store = self.nodes if kind == "nodes" else self.pods
                        if typ == "DELETED":
                            store.pop(key, None)
                        else:
                            store[key] = obj
                        self.events += 1
                        self.history.append((time.time(), kind, typ, key))
                    self._draw()
                self._draw(force=True)
            except Exception:  # noqa: BLE001 - 410 Gone, or the API went away: list again
                rv = None
                time.sleep(0.2)

    def start(self) -> ClusterView:
        self.widget.value = render({}, {}, self.title, 0)
        for kind in ("nodes", "pods"):
            t = threading.Thread(target=self._watch, args=(kind,), daemon=True, name=f"clusterview-{kind}")
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        """Stop watching; the widget keeps (and the saved notebook embeds) the final picture."""
        self._stop.set()
        for w in self._watches:
            w.stop()
        for t in self._threads:
            t.join(7)
        try:
            self.refresh()  # the final picture is exactly what the API holds now
        except Exception:  # noqa: BLE001 - the cluster is already gone: keep the last drawing
            self._draw(force=True)
