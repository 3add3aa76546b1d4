"""labkit.view"""
