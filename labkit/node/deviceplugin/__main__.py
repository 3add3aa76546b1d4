"""``python -m labkit.node.deviceplugin``: the sample plugin (what the GPU DaemonSet's pods run)."""

import sys

from labkit.node.deviceplugin.sample import main

sys.exit(main())
