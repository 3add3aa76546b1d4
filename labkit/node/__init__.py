"""labkit.node"""
