"""Plain helpers the tests share (no tests, no fixtures: the fixtures are in tests/conftest.py).

A test imports these as ``from support.cluster import wait_for``: pytest puts tests/ on the path.
"""
