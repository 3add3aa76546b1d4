"""What a ResourceQuota counts, shared by the apiserver's admission step and the quota controller.

As in Kubernetes (``pkg/quota/v1/evaluator``), one module says how much of each quota resource an
object uses (``usage``), one which objects a quota's scopes select (``scopes``), and one how
quantities are added, compared and printed (``amounts``). Admission charges a new object's usage
to the quotas' ``status.used`` before the object is stored; the controller recounts ``used`` from
the objects that really exist (after deletes, and after a create that failed once charged).
"""
