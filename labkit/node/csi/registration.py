"""Driver registration: what the kubelet writes to the API when a CSI driver starts on its node.

As in Kubernetes' plug-in registration, the kubelet asks the driver who it is (GetPluginInfo)
and how it names this node (NodeGetInfo), then lists it in the node's CSINode object; the
driver's CSIDriver object is created if the cluster does not have one yet (a real driver's
installation manifest ships it). The PV binder finds provisioners from these objects alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from labkit.client import ApiError, KubeConfig
from labkit.client.blocking import BlockingClient
from labkit.client.csinodes import csi_driver, with_driver, without_driver
from labkit.csi.client import CSIClient

log = logging.getLogger(__name__)


def register_on_node(kubeconfig: KubeConfig | str | None, node_name: str, endpoint: str) -> Callable[[], None]:
    """Register the driver the node just started; returns what unregisters it when the node stops.

    A registration that fails (no API server yet, a node run on its own) is logged, not raised:
    the node still mounts volumes, only dynamic provisioning has no driver to call.
    """
    try:
        name = register_driver(kubeconfig, node_name, endpoint)
    except Exception as exc:
        log.warning("node %s: CSI driver at %s not registered in the API: %s", node_name, endpoint, exc)
        return lambda: None
    return lambda: unregister_driver(kubeconfig, node_name, name)


def register_driver(kubeconfig: KubeConfig | str | None, node_name: str, endpoint: str,
                    timeout: float = 15.0) -> str:
    """List the driver at ``endpoint`` in ``node_name``'s CSINode; returns the driver's name.

    Blocking (the node's plug-ins are assembled outside the event loop); raises when the driver
    or the API server does not answer.
    """
    csi = CSIClient(endpoint, timeout=timeout)
    try:
        name, _ = csi.plugin_info()
        node_id = csi.node_info()
    finally:
        csi.close()

    with _client(kubeconfig, timeout) as client:
        try:
            client.call("create", "csidrivers", csi_driver(name))
        except ApiError as exc:
            if exc.code != 409:
                raise
        _change_csinode(client, node_name, lambda n: with_driver(n, name, node_id, endpoint))
    return name


def unregister_driver(kubeconfig: KubeConfig | str | None, node_name: str, driver: str,
                      timeout: float = 5.0) -> None:
    """Take the driver off the node's CSINode (the node is going away or the driver stopped)."""
    try:
        with _client(kubeconfig, timeout) as client:
            _change_csinode(client, node_name, lambda n: without_driver(n, driver), create=False)
    except Exception as exc:  # the API server may be gone first: nothing left to tidy then
        log.debug("unregistering CSI driver %s from %s: %s", driver, node_name, exc)


def _change_csinode(client: BlockingClient, node_name: str, change, create: bool = True) -> None:
    """Read-modify-write the CSINode, again on a conflict (the kubelet of that node is its only writer)."""
    for _ in range(5):
        try:
            current = client.get("csinodes", node_name)
        except ApiError as exc:
            if exc.code != 404:
                raise
            if not create:
                return
            try:
                client.call("create", "csinodes", change({"metadata": {"name": node_name}, "spec": {"drivers": []}}))
                return
            except ApiError as exc2:
                if exc2.code != 409:
                    raise
                continue
        try:
            client.call("update", "csinodes", change(current))
            return
        except ApiError as exc:
            if exc.code != 409:
                raise
    raise RuntimeError(f"CSINode {node_name} kept changing under the registration")


@contextmanager
def _client(kubeconfig: KubeConfig | str | None, timeout: float) -> Iterator[BlockingClient]:
    """labkit's client as blocking calls: the node's plug-ins are assembled outside any event loop."""
    client = BlockingClient(kubeconfig, user_agent="labkit-kubelet/csi-registration", timeout=timeout)
    try:
        yield client
    finally:
        client.close()
