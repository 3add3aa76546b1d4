"""A small ``crictl``: list what a CRI server runs, over its socket, the way crictl does.

    python -m labkit.node.cri.crictl --runtime-endpoint unix:///run/labkit/cri/n1.sock ps
    python -m labkit.node.cri.crictl -r /run/labkit/cri/n1.sock pods | images | version | inspect ID

It uses only the CRI wire protocol (no labkit internals), so its output is what any CRI
client would see. Real crictl is not packaged for Debian; where it is installed, point it at
the same socket and it lists the same things.
"""

from __future__ import annotations

import argparse
import sys
import time
import types

import grpc

from labkit.node.cri import api_pb2 as pb
from labkit.node.cri import api_pb2_grpc as pb_grpc
from labkit.node.cri.remote import normalize_endpoint

_CSTATE = {pb.CONTAINER_CREATED: "Created", pb.CONTAINER_RUNNING: "Running", pb.CONTAINER_EXITED: "Exited"}
_SSTATE = {pb.SANDBOX_READY: "Ready", pb.SANDBOX_NOTREADY: "NotReady"}


def _ago(ns: int) -> str:
    if not ns:
        return "-"
    s = max(0, time.time() - ns / 1e9)
    return f"{s:.0f}s ago" if s < 120 else f"{s / 60:.0f}m ago"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["   ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    return "\n".join(lines)


def crictl(command: str, endpoint: str, *args: str, all_states: bool = True,
           labels: dict[str, str] | None = None) -> str:
    """Run one crictl-style command against the CRI server at ``endpoint`` and return its text.

    ``labels`` keeps only pods with those labels (and their containers), like ``crictl --label``:
    a runtime lists everything on its host, also what other kubelets or tools started.
    """
    channel = grpc.insecure_channel(normalize_endpoint(endpoint))
    try:
        rt = pb_grpc.RuntimeServiceStub(channel)
        img = pb_grpc.ImageServiceStub(channel)
        if command == "version":
            v = rt.Version(pb.VersionRequest(version="v1"), timeout=10)
            return (
                f"Version:  {v.version}\nRuntimeName:  {v.runtime_name}\n"
                f"RuntimeVersion:  {v.runtime_version}\nRuntimeApiVersion:  {v.runtime_api_version}"
            )
        pod_filter = pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(label_selector=labels or {}))
        if command == "ps":
            r = rt.ListContainers(pb.ListContainersRequest(), timeout=10)
            pods = {p.id: p.metadata.name for p in rt.ListPodSandbox(pod_filter, timeout=10).items}
            rows = [
                [c.id[:13], c.image.image, _ago(c.created_at), _CSTATE.get(c.state, "Unknown"), c.metadata.name,
                 str(c.metadata.attempt), c.pod_sandbox_id[:13], pods.get(c.pod_sandbox_id, "")]
                for c in r.containers
                if (all_states or c.state == pb.CONTAINER_RUNNING) and (not labels or c.pod_sandbox_id in pods)
            ]
            return _table(rows, ["CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD"])
        if command == "pods":
            r = rt.ListPodSandbox(pod_filter, timeout=10)
            rows = [
                [p.id[:13], _ago(p.created_at), _SSTATE.get(p.state, "?"), p.metadata.name, p.metadata.namespace,
                 str(p.metadata.attempt)]
                for p in r.items
            ]
            return _table(rows, ["POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT"])
        if command == "images":
            r = img.ListImages(pb.ListImagesRequest(), timeout=10)
            rows = []
            for i in r.images:
                repo, _, tag = (i.repo_tags[0] if i.repo_tags else "<none>").rpartition(":")
                rows.append([repo or tag, tag if repo else "<none>", i.id.removeprefix("sha256:")[:13],
                             f"{i.size / 1e6:.1f}MB"])
            return _table(rows, ["IMAGE", "TAG", "IMAGE ID", "SIZE"])
        if command == "inspect":
            if not args:
                raise ValueError("inspect needs a container id")
            r = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=args[0], verbose=True), timeout=10)
            return str(r)
        raise ValueError(f"unknown command {command!r}; use version, ps, pods, images or inspect ID")
    except grpc.RpcError as exc:
        raise ConnectionError(f"CRI call failed at {endpoint}: {exc.code().name}: {exc.details()}") from None
    finally:
        channel.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m labkit.node.cri.crictl")
    ap.add_argument("-r", "--runtime-endpoint", required=True, help="unix:///path/to/cri.sock")
    ap.add_argument("--label", action="append", default=[], help="only pods with this key=value label")
    ap.add_argument("command", choices=["version", "ps", "pods", "images", "inspect"])
    ap.add_argument("args", nargs="*")
    a = ap.parse_args(argv)
    try:
        labels = dict(x.split("=", 1) for x in a.label if "=" in x)
        print(crictl(a.command, a.runtime_endpoint, *a.args, labels=labels or None))
    except (ValueError, ConnectionError) as exc:
        print(f"crictl: {exc}", file=sys.stderr)
        return 1
    return 0



class _CallableModule(types.ModuleType):
    """``labkit.node.cri.crictl`` is both this module and the function: ``crictl("ps", endpoint)``."""

    def __call__(self, command: str, endpoint: str, *args: str, all_states: bool = True,
                 labels: dict[str, str] | None = None) -> str:
        return crictl(command, endpoint, *args, all_states=all_states, labels=labels)


sys.modules[__name__].__class__ = _CallableModule


if __name__ == "__main__":
    sys.exit(main())
