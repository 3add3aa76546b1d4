"""labkit.controlplane"""
