"""``python -m labkit.node.kubelet ...``: the kubelet's older spelling of ``python -m labkit.node``."""

import runpy

if __name__ == "__main__":
    runpy.run_module("labkit.node", run_name="__main__", alter_sys=True)
