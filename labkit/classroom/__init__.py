"""The classroom: one secure control plane for a room of students.

``labkit class up`` starts a *class server* (:mod:`labkit.classroom.server`), one process that owns
the cluster (TLS, tokens, RBAC), gives every student a namespace fenced by Pod Security, a
ResourceQuota and a LimitRange (:mod:`.provision`, sizes in :mod:`.sizes`), writes a kubeconfig and a
printable handout per student (:mod:`.handout`), runs the labs' exercise checks against each
namespace with the teacher's credentials (:mod:`.gradebook`) and serves the live progress page
(:mod:`.progress`). Its state file (:mod:`.state`) is how ``labkit class status|check|down`` and
``labkit gc`` find it.
"""
