"""Lab 21's exercises: write CNI network configurations and watch real plugins apply them.

The learner writes ``.conflist`` files in the lab's work folder. Verify runs them with labkit's CNI
runner (the real ``bridge`` and ``host-local`` plugins) against network namespaces it makes for
the check, reads the addresses and routes the plugins left there, and deletes everything again:
a conflist that merely *says* the right subnet but does not work does not pass.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from labkit import paths
from labkit.node.cni.runner import CNI, CNIError, NetworkConfigList
from labkit.node.cni.topology import delete_netns, ensure_netns, in_netns
from labkit.practice import Exercise, Target, Verdict

NEEDS = ("root", "ip", "nsenter", "busybox", "bridge", "host-local")
NEW_SUBNET = ipaddress.ip_network("10.250.0.0/24")
PRIMARY = {  # the network eth0 gets in 21.3: what a cluster's own CNI config would give every pod
    "cniVersion": "1.0.0", "name": "lab21-primary",
    "plugins": [{"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.77.0/24"}]],
                          "routes": [{"dst": "0.0.0.0/0"}]}}],
}
PRIMARY_SUBNET = ipaddress.ip_network("10.244.77.0/24")


def _shown(path: Path) -> str:
    """A path as the learner knows it (``~/labkit-exercises/...``), not the build machine's home."""
    home = str(Path.home())
    return "~" + str(path)[len(home):] if str(path).startswith(home + "/") else str(path)


# --- the machinery every check uses ----------------------------------------------------------
def _scratch(t: Target) -> Path:
    """host-local's address book for the checks (never the host's /var/lib/cni)."""
    return paths.state_dir() / "cni" / "ipam" / f"ex21-{t.owner}"


def _load(t: Target, filename: str) -> tuple[dict | None, str]:
    """The learner's conflist, parsed: (config, "") or (None, what is wrong)."""
    path = t.workdir / filename
    if not path.exists():
        return None, f"there is no {_shown(path)} yet: write your network configuration list there (JSON)"
    try:
        conf = json.loads(path.read_text())
        NetworkConfigList.parse(conf)
    except (json.JSONDecodeError, CNIError) as err:
        return None, f"{_shown(path)} is not a usable conflist: {err}"
    return conf, ""


def _private_ipam(conf: dict, t: Target, tag: str) -> dict:
    """The same config with host-local keeping its leases in a scratch folder the check removes."""
    plugins = []
    for p in conf.get("plugins") or [{k: v for k, v in conf.items() if k not in ("name", "cniVersion")}]:
        p = dict(p)
        if isinstance(p.get("ipam"), dict) and p["ipam"].get("type") == "host-local":
            p["ipam"] = {**p["ipam"], "dataDir": str(_scratch(t) / tag)}
        plugins.append(p)
    return {"cniVersion": conf.get("cniVersion"), "name": conf.get("name"), "plugins": plugins}


@contextlib.contextmanager
def _namespaces(t: Target, pods: int) -> Iterator[tuple[str, list[str], list]]:
    """A node namespace (where the plugins run and the bridge lives), ``pods`` pod namespaces, and
    a list :func:`_add_all` fills with what it attached, so that DEL undoes it all afterwards."""
    base = f"labkit-ex21-{t.owner}"
    names = [f"{base}-node", *(f"{base}-pod{i}" for i in range(pods))]
    attached: list[tuple[CNI, str, str, str]] = []
    try:
        paths_ = [ensure_netns(n) for n in names]
        yield paths_[0], paths_[1:], attached
    finally:
        for cni, cid, pod, ifname in reversed(attached):
            with contextlib.suppress(CNIError):
                cni.delete(cid, pod, ifname)  # also drops the runner's cached result
        for n in names:
            delete_netns(n)  # the veths, the bridge and any iptables rules in them go too
        shutil.rmtree(_scratch(t), ignore_errors=True)


def _ns(path: str) -> str:
    return Path(path).name


def _addr(netns: str, ifname: str) -> ipaddress.IPv4Interface | None:
    out = in_netns(_ns(netns), "ip", "-4", "-o", "addr", "show", "dev", ifname, check=False).stdout
    m = re.search(r"inet (\S+)", out)
    return ipaddress.ip_interface(m.group(1)) if m else None  # type: ignore[return-value]


def _default_route(netns: str) -> tuple[str, str] | None:
    """(gateway, device) of the pod's default route, or None."""
    out = in_netns(_ns(netns), "ip", "-4", "route", "show", "default", check=False).stdout
    m = re.search(r"default via (\S+) dev (\S+)", out)
    return (m.group(1), m.group(2)) if m else None


def _mtu(netns: str, ifname: str) -> int:
    out = in_netns(_ns(netns), "ip", "-o", "link", "show", "dev", ifname, check=False).stdout
    m = re.search(r" mtu (\d+)", out)
    return int(m.group(1)) if m else 0


def _ping(netns: str, address: str) -> bool:
    p = in_netns(_ns(netns), "busybox", "ping", "-c", "1", "-W", "1", address, check=False)
    return p.returncode == 0


def _add_all(cni: CNI, t: Target, pods: list[str], ifname: str, attached: list) -> str:
    """ADD every pod; "" or the error a plugin reported."""
    for i, pod in enumerate(pods):
        cid = f"ex21-{t.owner}-{i}"
        try:
            cni.add(cid, pod, ifname)
        except CNIError as err:
            return str(err)
        attached.append((cni, cid, pod, ifname))
    return ""


# --- 21.1: a network in a new subnet -----------------------------------------------------------
def _verify_new_subnet(t: Target) -> Verdict:
    conf, problem = _load(t, "pods.conflist")
    if conf is None:
        return Verdict.not_yet(problem)
    with _namespaces(t, 1) as (node, pods, attached):
        err = _add_all(CNI(_private_ipam(conf, t, "pods"), exec_netns=node), t, pods, "eth0", attached)
        if err:
            return Verdict.not_yet(f"the plugins could not attach a pod: {err}")
        got = _addr(pods[0], "eth0")
    if got is None:
        return Verdict.not_yet("ADD succeeded but the pod's eth0 has no IPv4 address: does the chain include an "
                               "IPAM plugin (\"ipam\": {\"type\": \"host-local\", ...})?")
    if got.ip not in NEW_SUBNET:
        return Verdict.not_yet(f"the pod got {got}, which is outside {NEW_SUBNET}: change the IPAM range")
    return Verdict.ok(f"a pod attached with pods.conflist got {got} on eth0")


def _conflist(subnet: str, bridge: str, gateway: bool, mtu: int | None = None) -> dict:
    plugin: dict = {"type": "bridge", "bridge": bridge, "isGateway": gateway, "ipMasq": False,
                    "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]]}}
    if gateway:
        plugin["ipam"]["routes"] = [{"dst": "0.0.0.0/0"}]
    if mtu:
        plugin["mtu"] = mtu
    return {"cniVersion": "1.0.0", "name": "pods", "plugins": [plugin]}


def _solve_new_subnet(t: Target) -> None:
    (t.workdir / "pods.conflist").write_text(json.dumps(_conflist(str(NEW_SUBNET), "cni0", False), indent=1))


# --- 21.2: a gateway, a default route and a smaller MTU -----------------------------------------
def _verify_gateway(t: Target) -> Verdict:
    conf, problem = _load(t, "pods.conflist")
    if conf is None:
        return Verdict.not_yet(problem)
    with _namespaces(t, 2) as (node, pods, attached):
        err = _add_all(CNI(_private_ipam(conf, t, "pods"), exec_netns=node), t, pods, "eth0", attached)
        if err:
            return Verdict.not_yet(f"the plugins could not attach two pods: {err}")
        a, b = (_addr(p, "eth0") for p in pods)
        if a is None or b is None or a.ip not in NEW_SUBNET or b.ip not in NEW_SUBNET:
            return Verdict.not_yet(f"the pods got {a} and {b}: both must be in {NEW_SUBNET} (exercise 21.1)")
        route = _default_route(pods[0])
        if route is None:
            return Verdict.not_yet("the pod has no default route: let the bridge be the pods' gateway "
                                   "(\"isGateway\": true) and give IPAM a route to 0.0.0.0/0")
        gateway, dev = route
        if ipaddress.ip_address(gateway) not in NEW_SUBNET or dev != "eth0":
            return Verdict.not_yet(f"the default route goes via {gateway} dev {dev}; it should use the bridge's "
                                   f"address in {NEW_SUBNET} on eth0")
        mtu = _mtu(pods[0], "eth0")
        if mtu != 1400:
            return Verdict.not_yet(f"eth0's MTU is {mtu}; make it 1400 (the bridge plugin's \"mtu\")")
        if not _ping(pods[0], gateway):
            return Verdict.not_yet(f"the pod cannot ping its gateway {gateway}")
        if not _ping(pods[0], str(b.ip)):
            return Verdict.not_yet(f"pod 0 ({a.ip}) cannot ping pod 1 ({b.ip}) on the same bridge")
    return Verdict.ok(f"pods {a.ip} and {b.ip} reach each other and their gateway {gateway}; MTU 1400")


def _solve_gateway(t: Target) -> None:
    (t.workdir / "pods.conflist").write_text(json.dumps(_conflist(str(NEW_SUBNET), "cni0", True, 1400), indent=1))


# --- 21.3: a second network on a second interface ----------------------------------------------
def _verify_second_network(t: Target) -> Verdict:
    conf, problem = _load(t, "storage.conflist")
    if conf is None:
        return Verdict.not_yet(problem)
    with _namespaces(t, 2) as (node, pods, attached):
        err = _add_all(CNI(_private_ipam(PRIMARY, t, "primary"), exec_netns=node), t, pods, "eth0", attached)
        if err:
            return Verdict.not_yet(f"the cluster's own network (eth0) did not attach: {err}")
        err = _add_all(CNI(_private_ipam(conf, t, "storage"), exec_netns=node), t, pods, "net1", attached)
        if err:
            return Verdict.not_yet(f"eth0 was attached, then your storage network failed on net1: {err}. "
                                   "(a default route there clashes with the one eth0 already has)")
        a, b = (_addr(p, "net1") for p in pods)
        if a is None or b is None:
            return Verdict.not_yet("ADD succeeded but net1 has no IPv4 address: add an IPAM plugin")
        if a.network.overlaps(PRIMARY_SUBNET):
            return Verdict.not_yet(f"net1 got {a}, inside or overlapping eth0's {PRIMARY_SUBNET}: "
                                   "choose a subnet of its own")
        route = _default_route(pods[0])
        if route is None or route[1] != "eth0":
            return Verdict.not_yet(f"the pod's default route is now {route}: it must stay on eth0")
        if not _ping(pods[0], str(b.ip)):
            return Verdict.not_yet(f"pod 0 cannot reach pod 1 on the storage network ({a.ip} -> {b.ip})")
    return Verdict.ok(f"eth0 in {PRIMARY_SUBNET} and net1 in {a.network}; pods talk over net1, "
                      "the default route stays on eth0")


def _solve_second_network(t: Target) -> None:
    conf = _conflist("10.251.0.0/24", "storage0", False)
    conf["name"] = "storage"
    (t.workdir / "storage.conflist").write_text(json.dumps(conf, indent=1))


EXERCISES = [
    Exercise(
        id="21.1",
        title="Give pods addresses in a new subnet",
        statement=f"""Write a network configuration list `pods.conflist` in your lab folder
(`labkit.practice.exercise.default_workdir("21")`, normally `~/labkit-exercises/21/`) that gives a pod an
address in **{NEW_SUBNET}**, using the `bridge` and `host-local` plugins as the lab did. The check
runs your file against a fresh node and pod namespace and reads the address on the pod's `eth0`.""",
        verify=_verify_new_subnet,
        solution=_solve_new_subnet,
        solution_text=f"""```json
{json.dumps(_conflist(str(NEW_SUBNET), "cni0", False), indent=1)}
```""",
        concept="CNI configuration and IPAM",
        difficulty="easy",
        needs=NEEDS,
        timeout=20,
    ),
    Exercise(
        id="21.2",
        title="A gateway, a default route and a smaller MTU",
        statement=f"""Extend `pods.conflist` so that every pod in {NEW_SUBNET} gets a **default route via
the bridge** (the node is the pods' gateway) and an `eth0` **MTU of 1400** (a fabric that tunnels
between nodes needs room for its header). The check attaches two pods, reads their routes and MTU,
and pings the gateway and the other pod.""",
        verify=_verify_gateway,
        solution=_solve_gateway,
        solution_text=f"""```json
{json.dumps(_conflist(str(NEW_SUBNET), "cni0", True, 1400), indent=1)}
```""",
        concept="the bridge as gateway; routes from IPAM",
        difficulty="medium",
        needs=NEEDS,
        timeout=20,
    ),
    Exercise(
        id="21.3",
        title="A second network on a second interface",
        statement=f"""Some pods need a second network, e.g. for storage traffic (what Multus adds to a
cluster). Write `storage.conflist`: the check first attaches `eth0` with the cluster's own network
({PRIMARY_SUBNET}, default route via its bridge), then runs **your** file for the interface `net1`.
Both pods must reach each other over `net1`, and their default route must stay on `eth0`.""",
        verify=_verify_second_network,
        solution=_solve_second_network,
        solution_text="""A bridge of its own, a subnet of its own, and no gateway or default route:

```json
{"cniVersion": "1.0.0", "name": "storage",
 "plugins": [{"type": "bridge", "bridge": "storage0", "isGateway": false, "ipMasq": false,
              "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.251.0.0/24"}]]}}]}
```""",
        concept="multiple networks per pod",
        difficulty="hard",
        needs=NEEDS,
        timeout=20,
    ),
]
