"""labkit.client"""
