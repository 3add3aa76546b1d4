"""labkit: run every idea of 'From Containers to Container Cloud'.

The package tree mirrors the Kubernetes architecture diagram:

* ``labkit.images``        - images built offline: layers, digests, OCI image layout
* ``labkit.oci``           - OCI runtime bundles and a small runtime that does what runc does
* ``labkit.runtime``       - one CRI-shaped interface over native, runc/crun, Docker, simulated
* ``labkit.controlplane``  - the Master: apiserver, store (etcd & co), scheduler, controllers
* ``labkit.node``          - the Node: kubelet and its plug points CRI, CNI, CSI, device plugins
* ``labkit.client``        - a small Kubernetes API client the components share
* ``labkit.view``          - notebook views: diagrams, widgets, traces
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Heavy parts are imported on first use so `import labkit` stays cheap.
    if name in ("Cluster",):
        from labkit.cluster import Cluster

        return Cluster
    raise AttributeError(name)
