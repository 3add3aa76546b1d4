"""Two candidates, one Lease: only one leads, and the other takes over when the leader goes silent."""

from __future__ import annotations

import asyncio
import tempfile

from labkit.client import Client
from labkit.client.kubeconfig import write_kubeconfig
from labkit.client.leaderelection import LeaderElector
from labkit.controlplane.apiserver import APIServer


def test_one_leader_at_a_time_and_takeover_after_the_lease_expires():
    with APIServer("memory") as api, tempfile.NamedTemporaryFile(suffix=".kubeconfig") as kc:
        write_kubeconfig(kc.name, api.url)

        async def scenario():
            client = Client(kc.name)
            try:
                a = LeaderElector(client, "demo", identity="a", lease_duration=2, renew_every=0.3, retry_every=0.2)
                b = LeaderElector(client, "demo", identity="b", lease_duration=2, renew_every=0.3, retry_every=0.2)
                first = await asyncio.gather(a.try_acquire_or_renew(), b.try_acquire_or_renew())
                lease = await client.get("leases", "demo", "kube-system")
                holder = lease["spec"]["holderIdentity"]
                winner, loser = (a, b) if holder == "a" else (b, a)
                assert sorted(first) == [False, True]
                assert await winner.try_acquire_or_renew() and not await loser.try_acquire_or_renew()
                await asyncio.sleep(0.5)
                assert not await loser.try_acquire_or_renew(), "a lease renewed recently is not taken over"
                await asyncio.wait_for(loser.acquire(), 10)  # the winner stopped renewing: it expires
                after = await client.get("leases", "demo", "kube-system")
                return holder, loser.identity, after["spec"]
            finally:
                await client.close()

        holder, new_holder, spec = asyncio.run(scenario())
    assert spec["holderIdentity"] == new_holder != holder
    assert spec["leaseTransitions"] == 1
