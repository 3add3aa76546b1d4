"""labkit.mesos: two-level scheduling as Mesos does it, over the v1 scheduler HTTP API.

A :class:`~labkit.mesos.master.Master` owns agents (in-process, each with cpus/mem) and offers
their free resources to frameworks, ordered by Dominant Resource Fairness
(:mod:`labkit.mesos.allocator`). Frameworks are separate programs that decide what to run: they
``SUBSCRIBE`` to ``POST /api/v1/scheduler``, read a RecordIO event stream (``OFFERS``, ``UPDATE``
...) and answer with calls (``ACCEPT``, ``DECLINE`` ...). Tasks run as containers through
:mod:`labkit.runtime`.

    from labkit.mesos.master import Master
    with Master(runtime="native") as m:
        m.add_agent("agent-1", cpus=2, mem=1024)
        print(m.url)   # python -m labkit.mesos.frameworks.batch --master URL --tasks 4
"""

from labkit.mesos.protocol import TaskState

__all__ = ["TaskState"]
