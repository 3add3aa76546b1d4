"""labkit.controlplane.apiserver"""
