"""Mesos' hierarchical DRF allocator, for one role: who is offered an agent's free resources.

Each round walks the agents in random order (as Mesos does, so no agent is always first) and
offers all of one agent's free resources to one framework: the one with the lowest *dominant
share* (its largest fraction of any cluster resource, offered plus used; ties go to the earlier
subscriber) that is not suppressed and has no refuse filter for that agent. A decline with
``filters.refuse_seconds`` leaves a filter: that framework is skipped for that agent until it
expires, the agent offers more than was declined, or the framework sends REVIVE.

Pure bookkeeping with no I/O, so the benchmark times exactly the round the master runs.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field

Amounts = dict[str, float]

# --min_allocatable_resources' default: an agent with less free than this is not offered
MIN_ALLOCATABLE: tuple[Amounts, ...] = ({"cpus": 0.01}, {"mem": 32.0})


def add(a: Amounts, b: Amounts) -> Amounts:
    out = dict(a)
    for k, v in b.items():
        out[k] = round(out.get(k, 0.0) + v, 3)
    return out


def subtract(a: Amounts, b: Amounts) -> Amounts:
    out = dict(a)
    for k, v in b.items():
        out[k] = round(out.get(k, 0.0) - v, 3)
    return out


def contains(a: Amounts, b: Amounts) -> bool:
    """True when ``a`` holds at least ``b`` of every resource."""
    return all(a.get(k, 0.0) + 1e-9 >= v for k, v in b.items())


def allocatable(a: Amounts) -> bool:
    return any(contains(a, m) for m in MIN_ALLOCATABLE)


@dataclass
class AgentSlot:
    total: Amounts
    allocated: Amounts = field(default_factory=dict)  # offered or used, by anyone

    @property
    def free(self) -> Amounts:
        return {k: round(v - self.allocated.get(k, 0.0), 3) for k, v in self.total.items()}


@dataclass
class FrameworkSlot:
    order: int  # subscription order breaks ties in the sort
    allocated: Amounts = field(default_factory=dict)
    suppressed: bool = False
    active: bool = True  # False while its scheduler is disconnected (failover_timeout not yet over)
    filters: dict[str, tuple[float, Amounts]] = field(default_factory=dict)  # agent id -> (expiry, refused)


class DRFAllocator:
    """Offers whole agents' free resources to frameworks in Dominant Resource Fairness order."""

    def __init__(self, seed: int | None = None) -> None:
        self.agents: dict[str, AgentSlot] = {}
        self.frameworks: dict[str, FrameworkSlot] = {}
        self.total: Amounts = {}
        self._order = 0
        self._random = random.Random(seed)

    # membership
    def add_agent(self, agent_id: str, total: Amounts) -> None:
        self.agents[agent_id] = AgentSlot(total=dict(total))
        self.total = add(self.total, total)

    def remove_agent(self, agent_id: str) -> None:
        slot = self.agents.pop(agent_id)
        self.total = subtract(self.total, slot.total)
        for fw in self.frameworks.values():
            fw.filters.pop(agent_id, None)

    def add_framework(self, framework_id: str) -> None:
        self._order += 1
        self.frameworks[framework_id] = FrameworkSlot(order=self._order)

    def remove_framework(self, framework_id: str) -> None:
        self.frameworks.pop(framework_id, None)

    # the framework's calls
    def activate(self, framework_id: str, active: bool) -> None:
        self.frameworks[framework_id].active = active

    def suppress(self, framework_id: str) -> None:
        self.frameworks[framework_id].suppressed = True

    def revive(self, framework_id: str) -> None:
        fw = self.frameworks[framework_id]
        fw.suppressed = False
        fw.filters.clear()

    def recover(self, framework_id: str, agent_id: str, amounts: Amounts, refuse_seconds: float = 0.0,
                now: float = 0.0) -> None:
        """Give back resources (declined, unused in an ACCEPT, freed by a task's end, rescinded);
        a positive ``refuse_seconds`` filters this agent for the framework that long."""
        slot = self.agents.get(agent_id)
        if slot is not None:
            slot.allocated = subtract(slot.allocated, amounts)
        fw = self.frameworks.get(framework_id)
        if fw is not None:
            fw.allocated = subtract(fw.allocated, amounts)
            if refuse_seconds > 0 and slot is not None and any(v > 0 for v in amounts.values()):
                fw.filters[agent_id] = (now + refuse_seconds, dict(amounts))

    # shares
    def dominant_share(self, framework_id: str) -> float:
        return self._share(self.frameworks[framework_id].allocated)

    def _share(self, allocated: Amounts) -> float:
        total = self.total
        best = 0.0
        for k, v in allocated.items():
            t = total.get(k)
            if t:
                best = max(best, v / t)
        return best

    def _filtered(self, fw: FrameworkSlot, agent_id: str, free: Amounts, now: float) -> bool:
        entry = fw.filters.get(agent_id)
        if entry is None:
            return False
        expiry, refused = entry
        if now >= expiry or not contains(refused, free):
            del fw.filters[agent_id]  # expired, or the agent now has more than was refused
            return False
        return True

    def allocate(self, now: float) -> list[tuple[str, str, Amounts]]:
        """One allocation round: ``(framework id, agent id, resources)`` for each offer to make."""
        def rank(c: tuple[float, int, str, FrameworkSlot]) -> tuple[float, int]:
            return c[0], c[1]

        # (dominant share, subscription order, id, slot), kept sorted: after an offer only the
        # chosen framework's share grows, so it is moved rather than the whole list re-sorted
        ranked = sorted(((self._share(fw.allocated), fw.order, fid, fw) for fid, fw in self.frameworks.items()
                         if fw.active and not fw.suppressed), key=rank)
        if not ranked:
            return []
        ids = list(self.agents)
        self._random.shuffle(ids)
        offers = []
        for aid in ids:
            slot = self.agents[aid]
            free = slot.free
            if not allocatable(free):
                continue
            for i, (_, order, fid, fw) in enumerate(ranked):
                if fw.filters and self._filtered(fw, aid, free, now):
                    continue
                offered = {k: v for k, v in free.items() if v > 0}
                slot.allocated = dict(slot.total)  # all of it is now offered or in use
                mine = fw.allocated
                for k, v in offered.items():
                    mine[k] = round(mine.get(k, 0.0) + v, 3)
                del ranked[i]
                bisect.insort(ranked, (self._share(mine), order, fid, fw), key=rank)
                offers.append((fid, aid, offered))
                break
        return offers
