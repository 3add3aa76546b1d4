"""Reliability checks: recorded client histories, a linearizability checker, watch guarantees and fencing.

Kubernetes promises that every object is linearizable: a write acknowledged with a
resourceVersion is seen by every later read, and an update that names a resourceVersion is a
compare-and-swap. This package records what concurrent clients saw while faults were injected
(:mod:`.history`, :mod:`.clients`, :mod:`.faults`, :mod:`.campaign`), checks it against a
sequential model of one object (:mod:`.models`, :mod:`.linearizability`), checks watches
separately (:mod:`.watchcheck`), and shows why a lease alone is no lock (:mod:`.fencing`).
"""
