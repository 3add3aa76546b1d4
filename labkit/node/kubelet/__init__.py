"""labkit.node.kubelet"""
