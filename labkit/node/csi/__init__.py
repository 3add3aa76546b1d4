"""labkit.node.csi"""
