"""labkit.oci: the OCI layer of a node's stack (kubelet -> CRI -> runtime -> **OCI** -> Linux).

* :mod:`labkit.oci.spec`      ``make_config(...)`` -> a runtime-spec ``config.json`` dict that runc,
  crun and labkit's own runtime all accept
* :mod:`labkit.oci.bundle`    ``Bundle.create(dir, config)``: the bundle directory
* :mod:`labkit.oci.cgroups`   memory / CPU / pids limits and the kernel's counters, cgroup v1, v2, hybrid
* :mod:`labkit.oci.native`    labkit's runtime: ``NativeContainer`` and ``python -m labkit.oci.native``
* :mod:`labkit.oci.crun`      the argv that runs runc/crun here (crun needs a private mount ns on hybrid hosts)
* :mod:`labkit.oci.syscalls`  unshare, setns, mount, pivot_root, prctl, capset through ctypes
* :mod:`labkit.oci.capabilities`  capability names, numbers and the default container set
* :mod:`labkit.oci.seccomp`   the default seccomp profile (``linux.seccomp``), compiled with libseccomp
* :mod:`labkit.oci.devicefilter` the devices cgroup on cgroup v2: OCI device rules as a BPF program
* :mod:`labkit.oci.hardening` labkit's default spec beside ``runc spec``, row by row
* :mod:`labkit.oci.escape`    the classic chroot escape, run safely, for the pivot_root lab, and the
  probe that tries known escapes inside native, runc and crun containers (:mod:`labkit.oci.escape_probe`)
"""
