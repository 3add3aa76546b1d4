"""labkit.controlplane.scheduler"""
