"""labkit's ingress controller: Ingress rules served by an HTTP reverse proxy on loopback."""

from .controller import CONTROLLER_NAME, IngressController, ingress_class
from .routing import Backend, RouteTable

__all__ = ["CONTROLLER_NAME", "Backend", "IngressController", "RouteTable", "ingress_class"]
