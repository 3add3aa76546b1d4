"""Helpers for the CNI and pod start-up tests: what needs root, the objects a test may leave behind."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from labkit import paths
from labkit.node.cni import runner
from labkit.runtime.base import PodSandboxStatus, SandboxState

needs_root = pytest.mark.skipif(
    not (paths.is_root() and os.path.exists("/usr/lib/cni/bridge")),
    reason="needs root and containernetworking-plugins",
)
LK_BRIDGE = os.path.join(os.path.dirname(runner.__file__), "plugins", "lk-bridge")


def netns_list() -> set[str]:
    """The namespaces these tests make (other engineers' clusters run beside them: not theirs)."""
    names = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    return {n for n in names if n.startswith(("labkit-fabric-t", "labkit-node-t", "labkit-pod-"))}


def host_links() -> set[str]:
    """Host links named like the temporary veth ends the topology creates (lk + 8 hex digits)."""
    out = subprocess.run(["ip", "-j", "link"], capture_output=True, text=True).stdout
    return {x["ifname"] for x in json.loads(out) if x["ifname"].startswith("lk") and len(x["ifname"]) == 10}


def sandbox(tag: str) -> PodSandboxStatus:
    return PodSandboxStatus(uuid.uuid4().hex + tag, tag, "default", SandboxState.READY, 0.0)
