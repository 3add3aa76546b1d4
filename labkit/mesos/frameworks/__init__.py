"""Example frameworks, each its own process speaking the v1 scheduler HTTP API to a master:
``python -m labkit.mesos.frameworks.service`` (Marathon-like) and ``...frameworks.batch``."""
