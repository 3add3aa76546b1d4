"""CNI end to end: real plugins (Debian's Go ones and labkit's Python one), real network namespaces."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest
from support.cni import LK_BRIDGE, needs_root, sandbox

from labkit import paths
from labkit.node.cni.plugin import CNINetworkPlugin
from labkit.node.cni.runner import CNI, CNIError, NetworkConfigList
from labkit.node.kubelet.plugins import PluginError
from labkit.node.proxy import rules
from labkit.runtime.base import PodSandboxStatus


def start_server(plugin: CNINetworkPlugin, sb: PodSandboxStatus, tmp_path, text: str) -> subprocess.Popen:
    """busybox httpd inside the pod's network namespace: the pod's 'application'."""
    www = tmp_path / f"www-{sb.name}"
    www.mkdir()
    (www / "index.html").write_text(text)
    netns = f"/run/netns/{plugin._own_netns[sb.id]}"
    return subprocess.Popen(["nsenter", f"--net={netns}", "--", "busybox", "httpd", "-f", "-p", "80", "-h", str(www)])


def fetch(plugin: CNINetworkPlugin, sb: PodSandboxStatus, url: str) -> str:
    for _ in range(20):
        r = plugin.exec_in_pod(sb, "timeout", "3", "busybox", "wget", "-q", "-O-", url)
        if r.returncode == 0:
            return r.stdout
        import time

        time.sleep(0.1)
    return "FAILED: " + r.stderr


# --- configuration and protocol errors (no root needed) ---------------------
@pytest.mark.parametrize(
    "conf, words",
    [
        ("{not json", "not valid JSON"),
        ({"cniVersion": "1.0.0", "type": "bridge"}, "'name'"),
        ({"name": "n", "type": "bridge"}, "cniVersion"),
        ({"name": "n", "cniVersion": "1.0.0"}, "'type'"),
        ({"name": "n", "cniVersion": "1.0.0", "plugins": []}, "non-empty"),
        ({"name": "n", "cniVersion": "1.0.0", "plugins": [{"ipam": {}}]}, "plugin #0"),
        ({"name": "n", "cniVersion": "1.0.0", "type": "../../bin/sh"}, "bare name"),
    ],
)
def test_malformed_config_is_a_clear_error(conf, words):
    with pytest.raises(CNIError, match=words):
        NetworkConfigList.parse(conf)


def test_missing_plugin_binary_names_the_fix(tmp_path):
    cni = CNI({"name": "n", "cniVersion": "1.0.0", "type": "no-such-plugin"}, plugin_dirs=[str(tmp_path)])
    with pytest.raises(CNIError, match="no-such-plugin.*not found in CNI_PATH.*containernetworking-plugins"):
        cni.add("c1", "/run/netns/x")


def test_version_of_both_plugin_kinds():
    cni = CNI({"name": "n", "cniVersion": "1.0.0", "type": "lk-bridge"})
    assert "1.0.0" in cni.version("lk-bridge")["supportedVersions"]
    if os.path.exists("/usr/lib/cni/bridge"):
        assert "1.0.0" in cni.version("bridge")["supportedVersions"]


def test_python_plugin_reports_errors_in_cni_json():
    env = dict(os.environ, CNI_COMMAND="ADD", CNI_CONTAINERID="c", CNI_IFNAME="eth0", CNI_NETNS="/x")
    p = subprocess.run([LK_BRIDGE], input='{"cniVersion": "9.9.9", "name": "n", "type": "lk-bridge"}',
                       capture_output=True, text=True, env=env)
    assert p.returncode == 1
    err = json.loads(p.stdout)
    assert err["code"] == 1 and "not supported" in err["msg"]


# --- real networks -----------------------------------------------------------
@needs_root
@pytest.mark.parametrize("plugin", ["bridge", "lk-bridge"])
def test_pods_reach_each_other_on_one_node_and_across_nodes(state, tmp_path, plugin):
    n1 = CNINetworkPlugin(f"t{uuid.uuid4().hex[:5]}", "10.244.1.0/24", plugin=plugin, fabric=state)
    n2 = CNINetworkPlugin(f"t{uuid.uuid4().hex[:5]}", "10.244.2.0/24", plugin=plugin, fabric=state)
    servers = []
    try:
        a, b, c = sandbox("a"), sandbox("b"), sandbox("c")
        ip_a, ip_b = n1.setup_pod({"metadata": {"name": "a"}}, a), n1.setup_pod({}, b)
        ip_c = n2.setup_pod({}, c)
        assert ip_a.startswith("10.244.1.") and ip_b.startswith("10.244.1.") and ip_c.startswith("10.244.2.")
        assert len({ip_a, ip_b}) == 2
        n1.cni.check(a.id, f"/run/netns/{n1._own_netns[a.id]}")  # CHECK: still as ADD left it
        servers = [start_server(n1, b, tmp_path, "hello from b"), start_server(n2, c, tmp_path, "hello from c")]
        assert fetch(n1, a, f"http://{ip_b}/") == "hello from b"  # same node, over the bridge
        assert fetch(n1, a, f"http://{ip_c}/") == "hello from c"  # other node, through the router

        # A Service: ClusterIP 10.96.0.10:8080 -> both pods' port 80, programmed by the proxy's rules
        svc = {"metadata": {"name": "web", "namespace": "default"},
               "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 8080, "targetPort": 80}]}}
        ep = {"metadata": {"name": "web", "namespace": "default"},
              "subsets": [{"addresses": [{"ip": ip_c}], "ports": [{"port": 80}]}]}
        for n in (n1, n2):
            rules.apply(n.node.netns_path, rules.service_ports([svc], [ep]))
        assert fetch(n1, a, "http://10.96.0.10:8080/") == "hello from c"  # cross-node via ClusterIP
        ep["subsets"][0]["addresses"] = [{"ip": ip_b}]
        rules.apply(n1.node.netns_path, rules.service_ports([svc], [ep]))
        assert fetch(n1, a, "http://10.96.0.10:8080/") == "hello from b"  # same node via ClusterIP
        servers.append(start_server(n1, a, tmp_path, "hello from a"))
        ep["subsets"][0]["addresses"] = [{"ip": ip_a}]
        rules.apply(n1.node.netns_path, rules.service_ports([svc], [ep]))
        assert fetch(n1, a, "http://10.96.0.10:8080/") == "hello from a"  # hairpin: a pod to itself
        # no ready endpoints: refused at once, not a hang
        rules.apply(n1.node.netns_path, rules.service_ports([svc], []))
        r = n1.exec_in_pod(a, "timeout", "3", "busybox", "wget", "-q", "-O-", "http://10.96.0.10:8080/")
        assert r.returncode != 0 and "refused" in r.stderr
        # no route out: an address outside the project's namespaces is unreachable from a pod
        r = n1.exec_in_pod(a, "busybox", "ping", "-c1", "-W1", "192.0.2.1")
        assert r.returncode != 0
        for n, sb in ((n1, a), (n1, b), (n2, c)):
            n.teardown_pod({}, sb)
        assert n1.exec_in_pod(a, "true").returncode != 0  # the pod's namespace is gone
    finally:
        for s in servers:
            s.kill()
            s.wait()
        n1.close()
        n2.close()


@needs_root
def test_failed_chain_is_undone_and_reported(state):
    n1 = CNINetworkPlugin(f"t{uuid.uuid4().hex[:5]}", "10.244.3.0/24", fabric=state)
    try:
        n1.cni = CNI({**n1.conflist, "plugins": [n1.conflist["plugins"][0], {"type": "missing-plugin"}]},
                     exec_netns=n1.node.netns_path)
        sb = sandbox("x")
        with pytest.raises(PluginError, match="missing-plugin.*not found") as exc:
            n1.setup_pod({}, sb)
        assert exc.value.reason == "FailedCreatePodSandBox"
        links = subprocess.run(["ip", "netns", "exec", n1.node.netns, "ip", "-o", "link"],
                               capture_output=True, text=True).stdout
        assert "veth" not in links  # the bridge plugin's ADD was rolled back with DEL
        ipam = paths.state_dir() / "cni" / "ipam" / n1.node.node_name
        assert not [f for f in ipam.glob("10.*")] if ipam.exists() else True  # the address was released
    finally:
        n1.close()


@needs_root
def test_overlapping_pod_cidr_is_refused(state):
    n1 = CNINetworkPlugin(f"t{uuid.uuid4().hex[:5]}", "10.244.4.0/24", fabric=state)
    try:
        with pytest.raises(PluginError, match="overlaps"):
            CNINetworkPlugin(f"t{uuid.uuid4().hex[:5]}", "10.244.4.0/25", fabric=state)
    finally:
        n1.close()


@needs_root
def test_a_node_whose_owner_died_is_reaped(state):
    """A kubelet killed with SIGKILL cannot close its node; the next node set up on the host
    removes the namespace of any node whose owning process is gone."""
    from labkit.node.cni.topology import NodeNetwork, netns_exists, reap_stale_nodes

    orphan = NodeNetwork(f"t{uuid.uuid4().hex[:5]}", "10.244.60.0/24", fabric=state)
    script = ("import sys; from labkit.node.cni.topology import NodeNetwork as N; "
              f"N({orphan.node_name!r}, '10.244.60.0/24', fabric={state!r}).setup()")
    subprocess.run([os.sys.executable, "-c", script], check=True)  # set up by a process that then exits
    assert netns_exists(orphan.netns)
    removed = reap_stale_nodes()
    assert orphan.netns in removed and state in removed
    assert not netns_exists(orphan.netns) and not netns_exists(state)
    assert not (paths.state_dir() / "cni" / f"{state}.json").exists()
