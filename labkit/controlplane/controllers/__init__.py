"""labkit.controlplane.controllers"""
