"""labkit.node.cni"""
