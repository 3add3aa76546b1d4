"""``python -m labkit.classroom.server --name NAME``: the class server (``labkit class up`` starts it).

One process owns the class: it starts the secure cluster (its components die with it), makes every
student's namespace, token and kubeconfig, writes the handout, then serves the progress page and
checks every student's exercises every ``check_interval`` seconds until SIGTERM, when it stops the
cluster. Reading what ``labkit class up`` asked for from ``spec.json`` and answering in
``class.json`` (``ready``, or ``error``) keeps the command line out of the way of the roster.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

from aiohttp import web

from labkit.classroom import credentials, gradebook, handout, nodejoin, progress, provision, state
from labkit.classroom.roster import Student

log = logging.getLogger("labkit.classroom")


class ClassServer:
    def __init__(self, name: str, spec: dict):
        self.name = name
        self.spec = spec
        self.students = [Student(s["name"], s["size"]) for s in spec["students"]]
        self.exercises: list[str] = list(spec["exercises"])
        self.dir = Path(spec["dir"])
        self.gradebook = self.dir / "gradebook.csv"
        self.cluster = None
        self.server_url = ""
        self.join_token = ""
        self.kubeconfigs: dict[str, Path] = {}
        self._checks = threading.Event()
        self._lock = threading.Lock()

    # -------------------------------------------------------------- set-up
    def start_cluster(self) -> None:
        """Start the cluster; the students' namespaces and kubeconfigs are made while its nodes start."""
        self.cluster = credentials.secure_cluster(
            nodes=self.spec["nodes"], runtime=self.spec.get("runtime"), name=state.cluster_name(self.name),
            address=self.spec.get("address") or "127.0.0.1")
        self.server_url = self.cluster.url  # on --address: where students and nodes connect
        done: dict = {}
        started = threading.Event()
        early = threading.Thread(target=self._provision_when_serving, args=(started, done), daemon=True)
        early.start()
        try:
            self.cluster.start()
        finally:
            started.set()
        early.join()
        if "error" in done:
            raise done["error"]
        self.kubeconfigs = done["kubeconfigs"]

    def _provision_when_serving(self, started: threading.Event, done: dict) -> None:
        from labkit.cluster.supervisor import http_ok

        try:
            while not started.is_set():  # the apiserver answers (with RBAC's default roles) before the nodes
                if self.cluster.identities is not None and self.cluster.identities.ca_file.exists() and http_ok(
                        self.cluster.url + "/readyz", self.cluster.identities.ssl_context()):
                    break
                started.wait(0.1)
            if started.is_set() and not self.cluster.started:
                return  # the cluster did not start: nothing to provision
            done["kubeconfigs"] = self.provision(self.server_url)
        except Exception as exc:  # noqa: BLE001 - handed to the main thread
            done["error"] = exc

    def provision(self, server: str) -> dict[str, Path]:
        """Every student's namespace, token and kubeconfig (pointing at ``server``); the teacher's copy."""
        api = self.cluster.client()
        provision.room(api)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "kubeconfigs").mkdir(exist_ok=True)
        kubeconfigs = {}
        for s in self.students:
            provision.student(api, self.name, s, self.spec.get("pod_security", "baseline"))
            path = self.dir / "kubeconfigs" / f"{s.name}.kubeconfig"
            credentials.student_kubeconfig(self.cluster, server, s.name, [provision.STUDENTS_GROUP], s.namespace,
                                           path)
            kubeconfigs[s.name] = path
        shutil.copyfile(self.cluster.kubeconfig, self.dir / "teacher.kubeconfig")
        (self.dir / "teacher.kubeconfig").chmod(0o600)
        (self.dir / "ca.crt").write_bytes(credentials.ca_certificate(self.cluster))
        self.join_token = nodejoin.bootstrap_token(api)
        return kubeconfigs

    def _approver(self, stop: threading.Event) -> None:
        """Sign joining nodes in (the controller-manager's CSR approver and signer, for this class).

        It watches CertificateSigningRequests, so an idle class costs nothing between joins."""
        from kubernetes import client, watch

        ids = self.cluster.identities
        ca_cert, ca_key = Path(ids.ca_file).read_bytes(), (Path(ids.dir) / "ca.key").read_bytes()
        api = self.cluster.client()
        certs = client.CertificatesV1Api(api)
        while not stop.is_set():
            try:
                nodejoin.approve_pending(api, ca_cert, ca_key)
                for _ in watch.Watch().stream(certs.list_certificate_signing_request, timeout_seconds=5):
                    nodejoin.approve_pending(api, ca_cert, ca_key)
                    if stop.is_set():
                        break
            except Exception as exc:  # noqa: BLE001 - the next pass tries again
                log.warning("approving node certificates: %s", exc)
                stop.wait(1.0)

    # -------------------------------------------------------------- checks
    def check_round(self) -> None:
        with self._lock:  # one round at a time: a POST /check during a round waits for the next
            gradebook.run_checks(self.cluster.kubeconfig, self.students, self.exercises, self.gradebook,
                                 self.dir / "work")

    def _checker(self, stop: threading.Event) -> None:
        interval = float(self.spec.get("check_interval", 10.0))
        while not stop.is_set():
            if interval > 0 or self._checks.is_set():
                self._checks.clear()
                try:
                    self.check_round()
                except Exception as exc:  # noqa: BLE001 - the next round tries again
                    log.warning("check round failed: %s", exc)
            self._checks.wait(interval if interval > 0 else None)

    # -------------------------------------------------------------- serve
    async def serve(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        app = progress.app(f"Class {self.name}", self.students, self.exercises, self.gradebook,
                           check_now=self._checks.set)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", int(self.spec.get("progress_port") or 0))
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - aiohttp gives no public way to a port 0's choice
        progress_url = f"http://127.0.0.1:{port}/"
        kubeconfigs = self.kubeconfigs
        handout.write(self.dir, f"Class {self.name}", self.students, kubeconfigs, self.server_url)
        stop_threads = threading.Event()
        for target, name in ((self._checker, "class-checks"), (self._approver, "class-node-approver")):
            threading.Thread(target=target, args=(stop_threads,), name=name, daemon=True).start()
        state.save(self.name, self._info(progress_url, kubeconfigs, ready=True))
        await stop.wait()
        stop_threads.set()
        self._checks.set()
        await runner.cleanup()

    def _info(self, progress_url: str, kubeconfigs: dict[str, Path], ready: bool) -> dict:
        return {"name": self.name, "pid": os.getpid(), "ready": ready, "cluster": state.cluster_name(self.name),
                "api": self.server_url, "teacher_kubeconfig": str(self.dir / "teacher.kubeconfig"),
                "join": f"labkit node join --server {self.server_url} --token {self.join_token} "
                        f"--ca-cert {self.dir / 'ca.crt'}",
                "progress": progress_url, "dir": str(self.dir), "gradebook": str(self.gradebook),
                "exercises": self.exercises, "pod_security": self.spec.get("pod_security", "baseline"),
                "students": [{"name": s.name, "size": s.size, "namespace": s.namespace,
                              "kubeconfig": str(kubeconfigs[s.name])} for s in self.students]}

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.keep_state = False
            self.cluster.stop()


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labkit.classroom.server")
    parser.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s class %(levelname)s %(message)s")
    spec = json.loads((state.folder(args.name) / state.SPEC_FILE).read_text())
    server = ClassServer(args.name, spec)
    state.save(args.name, {"name": args.name, "pid": os.getpid(), "ready": False})  # gc: this class is alive
    signal.signal(signal.SIGTERM, _interrupt)  # a SIGTERM while the cluster starts still stops it cleanly
    try:
        server.start_cluster()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        asyncio.run(server.serve())
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        log.exception("the class could not start")
        state.save(args.name, {"name": args.name, "pid": None, "ready": False, "error": f"{type(exc).__name__}: {exc}"})
        server.stop()
        return 1
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
