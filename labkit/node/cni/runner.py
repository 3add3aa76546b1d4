"""Run CNI plugins the way the CNI spec says a runtime must.

A plugin is an executable. The runtime passes the operation in environment variables
(``CNI_COMMAND`` ADD/DEL/CHECK/VERSION, ``CNI_CONTAINERID``, ``CNI_NETNS``, ``CNI_IFNAME``,
``CNI_PATH``), the network configuration as JSON on stdin, and reads a JSON result (or a JSON
error) from stdout. A *network configuration list* chains plugins: on ADD each one gets the
previous one's result as ``prevResult``; DEL runs the chain backwards with the cached ADD result.
That is all there is to it, which is why Debian's Go plugins and labkit's Python one are
interchangeable here.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from labkit import paths, system_parts

CNI_VERSION = "1.0.0"
DEFAULT_PLUGIN_DIRS = ["/usr/lib/cni", "/opt/cni/bin", str(Path(__file__).parent / "plugins")]


class CNIError(Exception):
    """A CNI failure: a bad config, a missing plugin, or the error a plugin reported (code, msg)."""

    def __init__(self, msg: str, code: int = 999, details: str = "", plugin: str = ""):
        super().__init__(f"{plugin + ': ' if plugin else ''}{msg}{' (' + details + ')' if details else ''}")
        self.code = code
        self.msg = msg
        self.details = details
        self.plugin = plugin


@dataclass
class NetworkConfigList:
    """A parsed, validated ``.conflist`` (a single plugin ``.conf`` becomes a list of one)."""

    name: str
    cni_version: str
    plugins: list[dict] = field(default_factory=list)

    @classmethod
    def parse(cls, conf: dict | str | bytes) -> NetworkConfigList:
        """Validate and normalise; every problem is reported in words that say what to fix."""
        if isinstance(conf, str | bytes):
            try:
                conf = json.loads(conf)
            except json.JSONDecodeError as exc:
                raise CNIError(f"network configuration is not valid JSON: {exc}", code=6) from None
        if not isinstance(conf, dict):
            raise CNIError("network configuration must be a JSON object", code=6)
        name = conf.get("name")
        if not isinstance(name, str) or not name:
            raise CNIError("network configuration needs a non-empty string 'name'", code=6)
        version = conf.get("cniVersion")
        if not isinstance(version, str) or not version:
            raise CNIError("network configuration needs 'cniVersion' (for example \"1.0.0\")", code=6)
        if "plugins" in conf:
            plugins = conf["plugins"]
            if not isinstance(plugins, list) or not plugins:
                raise CNIError("'plugins' must be a non-empty list of plugin configurations", code=6)
        elif "type" in conf:
            plugins = [{k: v for k, v in conf.items() if k not in ("name", "cniVersion")}]
        else:
            raise CNIError("network configuration needs either 'type' (one plugin) or 'plugins' (a list)", code=6)
        for i, p in enumerate(plugins):
            if not isinstance(p, dict) or not isinstance(p.get("type"), str) or not p["type"]:
                raise CNIError(f"plugin #{i} needs a string 'type' naming the plugin binary", code=6)
            if "/" in p["type"]:
                raise CNIError(f"plugin type {p['type']!r} must be a bare name found in CNI_PATH", code=6)
        return cls(name=name, cni_version=version, plugins=plugins)

    def plugin_config(self, i: int, prev_result: dict | None) -> dict:
        conf = dict(self.plugins[i], name=self.name, cniVersion=self.cni_version)
        if prev_result is not None:
            conf["prevResult"] = prev_result
        return conf


def _cache_dir() -> Path:
    p = paths.state_dir() / "cni" / "results"
    p.mkdir(parents=True, exist_ok=True)
    return p


class CNI:
    """Execute one network configuration list for containers.

    ``exec_netns``: run the plugins inside this network namespace (a path such as
    ``/run/netns/labkit-node-n1``). labkit's nodes are namespaces of their own, so the bridge a
    plugin creates lives in the node, not on the host.
    """

    def __init__(
        self,
        conf: dict | str | NetworkConfigList,
        plugin_dirs: list[str] | None = None,
        exec_netns: str | None = None,
        timeout: float = 30.0,
    ):
        self.conf = conf if isinstance(conf, NetworkConfigList) else NetworkConfigList.parse(conf)
        self.plugin_dirs = plugin_dirs or DEFAULT_PLUGIN_DIRS
        self.exec_netns = exec_netns
        self.timeout = timeout
        #: (command, plugin, milliseconds) of every execution, for labs that show the protocol
        self.log: list[tuple[str, str, float]] = []

    # --- plumbing -------------------------------------------------------
    def find_plugin(self, type_: str) -> str:
        for d in self.plugin_dirs:
            p = os.path.join(d, type_)
            if os.path.isfile(p) and os.access(p, os.X_OK):
                return p
        raise CNIError(
            f"plugin binary {type_!r} not found in CNI_PATH={':'.join(self.plugin_dirs)}; install "
            f"containernetworking-plugins ({system_parts.install_hint('bridge')}) or fix 'type'",
            code=7,
            plugin=type_,
        )

    def exec_plugin(self, command: str, conf: dict, container_id: str, netns: str, ifname: str,
                    args: str = "") -> dict:
        """Run one plugin once; returns its parsed JSON result (``{}`` when it prints nothing)."""
        binary = self.find_plugin(conf["type"])
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container_id,
            "CNI_NETNS": netns,
            "CNI_IFNAME": ifname,
            "CNI_PATH": ":".join(self.plugin_dirs),
        }
        if args:
            env["CNI_ARGS"] = args
        argv = [binary]
        if self.exec_netns:
            argv = ["nsenter", f"--net={self.exec_netns}", "--", binary]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                argv, input=json.dumps(conf).encode(), env=env, capture_output=True, timeout=self.timeout
            )
        except subprocess.TimeoutExpired:
            raise CNIError(f"{command} did not finish in {self.timeout:.0f} s", code=999, plugin=conf["type"]) from None
        finally:
            self.log.append((command, conf["type"], (time.perf_counter() - t0) * 1000))
        out = proc.stdout.decode(errors="replace").strip()
        result: dict = {}
        if out:
            try:
                result = json.loads(out)
            except json.JSONDecodeError:
                raise CNIError(f"{command} printed something that is not JSON: {out[:200]!r}", plugin=conf["type"]) from None
        if proc.returncode != 0:
            if "msg" in result:
                raise CNIError(result["msg"], code=int(result.get("code", 999)), details=result.get("details", ""),
                               plugin=conf["type"])
            err = proc.stderr.decode(errors="replace").strip()
            raise CNIError(f"{command} failed with exit code {proc.returncode}: {err[:300]}", plugin=conf["type"])
        return result

    def _cache_path(self, container_id: str, ifname: str) -> Path:
        return _cache_dir() / f"{self.conf.name}-{container_id}-{ifname}.json"

    # --- operations -----------------------------------------------------
    def add(self, container_id: str, netns: str, ifname: str = "eth0", args: str = "") -> dict:
        """ADD through the whole chain; returns the final result (and caches it for DEL/CHECK).

        If a plugin in the middle fails, the ones before it are undone with DEL, so a failed ADD
        leaves nothing behind.
        """
        prev: dict | None = None
        for i in range(len(self.conf.plugins)):
            try:
                prev = self.exec_plugin("ADD", self.conf.plugin_config(i, prev), container_id, netns, ifname, args)
            except CNIError:
                for j in reversed(range(i)):
                    try:
                        self.exec_plugin("DEL", self.conf.plugin_config(j, prev), container_id, netns, ifname, args)
                    except CNIError:
                        pass
                raise
        result = prev or {}
        self._cache_path(container_id, ifname).write_text(json.dumps(result))
        return result

    def delete(self, container_id: str, netns: str, ifname: str = "eth0", args: str = "") -> None:
        """DEL through the chain in reverse; tolerant of things already gone, as the spec asks."""
        cache = self._cache_path(container_id, ifname)
        prev = json.loads(cache.read_text()) if cache.exists() else None
        errors = []
        for i in reversed(range(len(self.conf.plugins))):
            try:
                self.exec_plugin("DEL", self.conf.plugin_config(i, prev), container_id, netns, ifname, args)
            except CNIError as exc:
                errors.append(exc)
        cache.unlink(missing_ok=True)
        if errors:
            raise errors[0]

    def check(self, container_id: str, netns: str, ifname: str = "eth0") -> None:
        """CHECK: each plugin verifies what it set up still matches the cached result."""
        cache = self._cache_path(container_id, ifname)
        if not cache.exists():
            raise CNIError(f"no cached ADD result for container {container_id}: was it added?", code=999)
        prev = json.loads(cache.read_text())
        for i in range(len(self.conf.plugins)):
            self.exec_plugin("CHECK", self.conf.plugin_config(i, prev), container_id, netns, ifname)

    def version(self, type_: str) -> dict:
        """VERSION: which spec versions a plugin speaks."""
        return self.exec_plugin("VERSION", {"cniVersion": self.conf.cni_version, "name": self.conf.name,
                                            "type": type_}, "", "", "")


def pod_ip(result: dict) -> str | None:
    """The pod's IPv4 address from an ADD result (the first address on the container interface)."""
    ips = result.get("ips") or []
    ifaces = result.get("interfaces") or []
    for ip in ips:
        idx = ip.get("interface")
        if idx is None or (0 <= idx < len(ifaces) and ifaces[idx].get("sandbox")):
            addr = ip.get("address", "").split("/")[0]
            if addr and ":" not in addr:
                return addr
    return None


def have_plugins(*types: str, plugin_dirs: list[str] | None = None) -> bool:
    """True when every named plugin binary is installed (labs choose a fallback otherwise)."""
    dirs = plugin_dirs or DEFAULT_PLUGIN_DIRS
    return all(any(os.access(os.path.join(d, t), os.X_OK) for d in dirs) for t in types)
