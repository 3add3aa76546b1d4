"""``python -m labkit.ingress --kubeconfig KC --port 8080``: the ingress controller as a process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from .controller import IngressController


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m labkit.ingress", description="labkit's ingress controller")
    ap.add_argument("--kubeconfig", default=None)
    ap.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 to serve (0: any free one)")
    ap.add_argument("--class", dest="ingress_class", default="labkit", help="the IngressClass it serves")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    try:
        asyncio.run(IngressController(a.kubeconfig, a.port, a.ingress_class).run())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
