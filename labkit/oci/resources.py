"""The limits of one container, as the OCI spec's ``linux.resources`` and the CRI's
``LinuxContainerResources`` carry them.

A plain class rather than a dataclass: ``labkit run --rm`` builds one on every start, and the
``dataclasses`` module is not among the few imports that path pays for (``benchmarks/README.md``).
"""

from __future__ import annotations


class Resources:
    """Memory, CPU and pids limits; None means unlimited."""

    __slots__ = ("memory_bytes", "cpu_quota_us", "cpu_period_us", "pids_limit")

    def __init__(self, memory_bytes: int | None = None, cpu_quota_us: int | None = None,
                 cpu_period_us: int = 100_000, pids_limit: int | None = None) -> None:
        self.memory_bytes = memory_bytes  # hard limit
        self.cpu_quota_us = cpu_quota_us  # CFS quota per period
        self.cpu_period_us = cpu_period_us
        self.pids_limit = pids_limit

    @classmethod
    def from_cpus(cls, cpus: float, **kw) -> Resources:
        return cls(cpu_quota_us=int(cpus * 100_000), cpu_period_us=100_000, **kw)

    def _values(self) -> tuple:
        return (self.memory_bytes, self.cpu_quota_us, self.cpu_period_us, self.pids_limit)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Resources) and self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass it replaces

    def __repr__(self) -> str:
        return ("Resources(memory_bytes={!r}, cpu_quota_us={!r}, cpu_period_us={!r}, pids_limit={!r})"
                .format(*self._values()))
