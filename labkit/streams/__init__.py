"""The streaming side of the API: ``pods/exec``, ``pods/attach`` and ``pods/portforward``.

Kubernetes carries these as a WebSocket whose messages each start with one byte, the channel:
0 stdin, 1 stdout, 2 stderr, 3 error (a ``metav1.Status`` with the exit code), 4 resize (tty).
``v5.channel.k8s.io`` adds 255, CLOSE: ``[255, ch]`` says channel ``ch`` is done (stdin EOF,
which ``kubectl cp`` needs). The apiserver and the kubelet only relay the socket
(:mod:`labkit.streams.relay`); the runtime's streaming server runs the command
(:mod:`labkit.runtime.streaming`).
"""
