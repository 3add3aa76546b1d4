"""labkit.oci"""
