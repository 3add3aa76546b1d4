"""labkit.node.cri"""
