"""labkit.controlplane.store"""
