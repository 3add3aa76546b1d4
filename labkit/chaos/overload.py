"""``apiserver-overload``: a burst of clients hammering the apiserver for the duration.

Chaos Mesh and LitmusChaos call this kind of thing a stress or load fault. It changes nothing on
the machine, so there is nothing to write down or undo: when the duration is over the clients
stop. What it reports is how the server held: answers by status code, how many 429s came without
a ``Retry-After``, and the latency of the answers that succeeded. kube-apiserver (and labkit's,
``--max-requests-inflight``) answers an overload with 429 and ``Retry-After`` instead of queueing
without bound.
"""

from __future__ import annotations

from labkit.chaos.fault import Fault, sigterm_as_interrupt


class ApiServerOverload(Fault):
    action = "apiserver-overload"
    target_help = "apiserver (the cluster's API server)"

    def inject(self) -> None:
        if self.target != "apiserver":
            from labkit.chaos.target import ChaosError

            raise ChaosError(f"apiserver-overload targets the apiserver, not {self.target!r}")
        self.clients = int(self.options.get("clients") or 200)
        self.say(f"{self.clients} clients start sending GET /api/v1/namespaces to {self.cluster.url}, "
                 "not backing off on 429")

    def hold(self, duration: float) -> None:
        from labkit.controlplane.apiserver.overload import burst

        with sigterm_as_interrupt():
            result = burst(self.cluster.url, clients=self.clients, seconds=max(0.5, duration))
        self.result = result
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(result.codes.items()))
        self.say(f"{result.sent} requests in {result.seconds:g}s ({codes}; no answer: {result.failures}); "
                 f"429 without Retry-After: {result.no_retry_after}; "
                 f"p99 of the 200s: {result.percentile(99) * 1000:.0f} ms")
