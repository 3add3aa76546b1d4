"""labkit.node.deviceplugin"""
