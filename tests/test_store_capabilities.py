"""What a store declares about itself (in_memory, group_commit, writer_busy, create_async) and how the
apiserver uses it: any store works behind the apiserver, whatever its name, by its declarations alone."""

from __future__ import annotations

import concurrent.futures
import json
import threading

import requests

from labkit.controlplane.apiserver import APIServer
from labkit.controlplane.store import KeyExists, open_store
from labkit.controlplane.store.memory import MemoryStore


def test_every_store_can_create_async_and_reports_errors_to_the_callback(tmp_path):
    for url in ("memory", f"sqlite:{tmp_path / 's.db'}"):
        store = open_store(url)
        try:
            results: list = []
            done = threading.Event()

            def on_done(kv, err, results=results, done=done):
                results.append((kv, err))
                if len(results) == 2:
                    done.set()
            store.create_async("/cap/a", b"v", on_done)
            store.create_async("/cap/a", b"again", on_done)
            assert done.wait(10), url
            (kv, err), (kv2, err2) = results
            assert err is None and kv.key == "/cap/a" and kv.value == b"v", url
            assert kv2 is None and isinstance(err2, KeyExists), url
        finally:
            store.close()


def test_stores_declare_how_they_may_be_called(tmp_path):
    memory, sqlite = open_store("memory"), open_store(f"sqlite:{tmp_path / 's.db'}")
    try:
        assert memory.in_memory and not memory.group_commit and not memory.writer_busy
        assert sqlite.group_commit and not sqlite.in_memory and not sqlite.writer_busy  # idle
    finally:
        memory.close()
        sqlite.close()


class _ElsewhereStore(MemoryStore):
    """A store the apiserver has never heard of, that asks to be called from worker threads."""

    name = "elsewhere"
    in_memory = False

    @property
    def writer_busy(self) -> bool:
        return True


def test_the_apiserver_serves_a_store_by_what_it_declares_not_by_its_name():
    with APIServer(_ElsewhereStore()) as api:
        url = f"{api.url}/api/v1/namespaces/default/configmaps"

        def create(i: int) -> int:
            body = {"metadata": {"name": f"c{i}"}, "data": {"i": str(i)}}
            return requests.post(url, data=json.dumps(body), timeout=10,
                                 headers={"Content-Type": "application/json"}).status_code
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(create, range(24)))
        assert codes == [201] * 24
        names = {item["metadata"]["name"] for item in requests.get(url, timeout=10).json()["items"]}
        assert names == {f"c{i}" for i in range(24)}
