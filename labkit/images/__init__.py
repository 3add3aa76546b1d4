"""labkit.images"""
