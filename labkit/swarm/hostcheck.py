"""What this host's kernel lets a multi-node swarm do, checked before the lab relies on it.

Swarm's routing mesh (the ``ingress`` network and service VIPs) balances with the kernel's IPVS;
overlay networks between nodes are VXLAN; nested engines need ``dockerd`` and network namespaces.
A kernel built without IPVS (some VM kernels are) still runs a swarm, overlay networks and DNS
round-robin, but no published port answers through the mesh: the lab then says so and shows the
parts that do run.
"""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass
from pathlib import Path


def _kernel_config(option: str) -> bool | None:
    """``CONFIG_<option>`` from /proc/config.gz: True (y or m), False (not set), None (unknown)."""
    try:
        text = gzip.decompress(Path("/proc/config.gz").read_bytes()).decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"CONFIG_{option}="):
            return line.split("=", 1)[1] in ("y", "m")
    return False


@dataclass(frozen=True)
class HostCheck:
    dockerd: bool  # the binary is there
    netns: bool  # network namespaces can be made (root, /var/run/netns)
    ipvs: bool  # the routing mesh and service VIPs can balance
    vxlan: bool | None  # overlay networks between nodes

    @property
    def multi_node(self) -> bool:
        """Three engines can run side by side (the routing mesh is a separate question)."""
        return self.dockerd and self.netns

    def lines(self) -> list[str]:
        def say(ok: bool | None) -> str:
            return "yes" if ok else ("unknown" if ok is None else "NO")
        return [f"dockerd binary ............ {say(self.dockerd)}",
                f"network namespaces (root) . {say(self.netns)}",
                f"VXLAN (overlay networks) .. {say(self.vxlan)}",
                f"IPVS (routing mesh, VIPs) . {say(self.ipvs)}"]


def host_allows() -> HostCheck:
    import os

    ipvs = Path("/proc/net/ip_vs").exists() or Path("/proc/sys/net/ipv4/vs").is_dir()
    if not ipvs and _kernel_config("IP_VS"):
        ipvs = True  # built as a module that is not loaded yet: dockerd loads it
    return HostCheck(dockerd=shutil.which("dockerd") is not None and shutil.which("docker") is not None,
                     netns=os.geteuid() == 0 and shutil.which("ip") is not None,
                     ipvs=ipvs, vxlan=_kernel_config("VXLAN"))
