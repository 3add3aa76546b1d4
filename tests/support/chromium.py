"""Headless Chromium driven over the DevTools protocol, for the tests that look at a page as a reader
does: the built book (test_book_site) and the classroom's live progress page (test_class)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             shutil.which("google-chrome")) if p), None)


class Chromium:
    """Headless Chromium driven over the DevTools protocol (one browser, one tab, many pages)."""

    def __init__(self, loopback: bool = False) -> None:
        # no name resolves (the site must not reach out); ``loopback`` lets pages served on 127.0.0.1 load
        self.resolver_rules = "MAP * ~NOTFOUND" + (", EXCLUDE 127.0.0.1" if loopback else "")
        self.profile = tempfile.mkdtemp(prefix="labkit-book-chromium-")
        self.proc: subprocess.Popen | None = None
        self.ws = None
        self.session = None
        self.next_id = 0
        self.pending: dict[int, asyncio.Future] = {}
        self.events: list[dict] = []

    async def start(self) -> None:
        import aiohttp

        self.log = open(self.profile + ".log", "w")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
             f"--host-resolver-rules={self.resolver_rules}", f"--user-data-dir={self.profile}",
             "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=self.log, start_new_session=True)  # its own process group
        port_file = Path(self.profile) / "DevToolsActivePort"
        for _ in range(400):
            if port_file.exists() and port_file.read_text().strip():
                break
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("Chromium did not open its DevTools port within 20 s")
        if not port_file.exists():
            raise RuntimeError(f"Chromium exited ({self.proc.returncode}): {Path(self.log.name).read_text()[-2000:]}")
        port = int(port_file.read_text().split()[0])
        self.session = aiohttp.ClientSession()
        for _ in range(100):
            async with self.session.get(f"http://127.0.0.1:{port}/json/list") as r:
                targets = [t for t in await r.json(content_type=None) if t.get("type") == "page"]
            if targets:
                break
            await asyncio.sleep(0.05)
        self.ws = await self.session.ws_connect(targets[0]["webSocketDebuggerUrl"], max_msg_size=0)
        self.reader = asyncio.get_running_loop().create_task(self._read())
        for domain in ("Page", "Runtime", "Log", "Network"):
            await self.call(f"{domain}.enable")

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
            elif "method" in data:
                self.events.append(data)

    async def call(self, method: str, **params) -> dict:
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = fut
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        reply = await asyncio.wait_for(fut, 30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def evaluate(self, expr: str):
        r = await self.call("Runtime.evaluate", expression=expr, awaitPromise=True, returnByValue=True)
        return r.get("result", {}).get("value")

    async def open(self, url: str) -> None:
        self.events.clear()
        await self.call("Page.navigate", url=url)
        for _ in range(300):
            if any(e["method"] == "Page.loadEventFired" for e in self.events):
                # A load event can belong to an earlier navigation: also check where we are.
                state = await self.evaluate("document.readyState + ' ' + location.href.split('#')[0]")
                if state == f"complete {url}":
                    return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{url} did not finish loading")

    def problems(self) -> list[str]:
        out = []
        for e in self.events:
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append("exception: " + d.get("exception", {}).get("description", d.get("text", "")))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console.error: " + " ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif m == "Network.requestWillBeSent":
                url = p["request"]["url"]
                if not url.startswith(("file:", "data:", "blob:", "about:", "chrome")):
                    out.append(f"network request off the disk: {url}")
        return out

    async def close(self) -> None:
        if getattr(self, "reader", None) is not None:
            self.reader.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()
        if self.proc is not None:
            # Chromium's helper processes share its process group: end them all, or one of them
            # may still write into the profile while it is being removed.
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    continue
                await asyncio.sleep(0.2)
        for _ in range(20):
            shutil.rmtree(self.profile, ignore_errors=True)
            if not os.path.exists(self.profile):
                break
            await asyncio.sleep(0.1)
        if getattr(self, "log", None) is not None:
            self.log.close()
            Path(self.log.name).unlink(missing_ok=True)
