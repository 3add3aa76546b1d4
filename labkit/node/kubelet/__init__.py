"""labkit's kubelet: the node agent.

* :mod:`.kubelet`    - register the Node, renew its Lease, watch this node's pods, serve logs
* :mod:`.podworker`  - one pod: sandbox → network → volumes → devices → containers; restarts, probes, status
* :mod:`.plugins`    - the plug points (CNI, CSI, device plugins) other modules implement
* :mod:`.hollow`     - thousands of bookkeeping-only kubelets in one process, for scale
"""
