"""labkit.runtime"""
