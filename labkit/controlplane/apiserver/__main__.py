"""``python -m labkit.controlplane.apiserver --port P --store URL``: run the apiserver as a process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from labkit.controlplane.apiserver.auth.tlsconfig import TLSConfig
from labkit.controlplane.apiserver.server import APIServer


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, start the server, print one ready line, serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m labkit.controlplane.apiserver",
                                     description="Serve the Kubernetes API for labkit's control plane.")
    parser.add_argument("--port", type=int, default=6443, help="TCP port (0 picks a free one)")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--store", default="sqlite", help="memory | sqlite[:PATH] | etcd:http://HOST:PORT")
    parser.add_argument("--bookmark-interval", type=float, default=5.0, help="seconds between watch bookmarks")
    parser.add_argument("--compact-interval", type=float, default=300.0,
                        help="seconds between store compactions (0 = never); each keeps one interval of history")
    parser.add_argument("--max-requests-inflight", type=int, default=400,
                        help="read-only requests served at once before the rest get 429 (0 = no limit)")
    parser.add_argument("--max-mutating-requests-inflight", type=int, default=200,
                        help="mutating requests served at once before the rest get 429 (0 = no limit)")
    parser.add_argument("--max-watches", type=int, default=None,
                        help="open watches allowed at once before the next gets 429 (default: from the file limit)")
    parser.add_argument("--tls-cert-file", help="serving certificate (PEM); with --tls-private-key-file, serve HTTPS")
    parser.add_argument("--tls-private-key-file", help="the serving certificate's private key (PEM)")
    parser.add_argument("--client-ca-file", help="CA whose client certificates authenticate (user = CN, groups = O)")
    parser.add_argument("--token-auth-file", help='static tokens, one per line: token,user,uid,"group1,group2"')
    parser.add_argument("--authorization-mode", default="AlwaysAllow",
                        help="authorizers in order: AlwaysAllow, AlwaysDeny, Node, RBAC (e.g. Node,RBAC)")
    parser.add_argument("--service-account-signing-key-file",
                        help="ECDSA P-256 key (PEM) that signs ServiceAccount tokens; made there if absent")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    # every watch holds a socket: take the whole file limit the system allows, as Go programs do
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, OSError, ValueError):
        pass
    # store watches deliver on their own threads: hand the GIL over sooner than the 5 ms default
    sys.setswitchinterval(0.0005)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s apiserver %(levelname)s %(message)s")
    if bool(args.tls_cert_file) != bool(args.tls_private_key_file):
        print("apiserver: --tls-cert-file and --tls-private-key-file go together", file=sys.stderr)
        return 2
    tls = TLSConfig(args.tls_cert_file, args.tls_private_key_file, args.client_ca_file) if args.tls_cert_file else None
    if args.client_ca_file and tls is None:
        print("apiserver: --client-ca-file needs --tls-cert-file and --tls-private-key-file", file=sys.stderr)
        return 2
    try:
        server = APIServer(args.store, host=args.bind, port=args.port, bookmark_interval=args.bookmark_interval,
                           compact_interval=args.compact_interval or None,
                           max_requests_inflight=args.max_requests_inflight,
                           max_mutating_requests_inflight=args.max_mutating_requests_inflight,
                           max_watches=args.max_watches, tls=tls, token_file=args.token_auth_file,
                           authorization_mode=args.authorization_mode,
                           service_account_key_file=args.service_account_signing_key_file)
    except ValueError as exc:
        print(f"apiserver: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"apiserver: cannot open the store {args.store!r}: {exc}", file=sys.stderr)
        return 1

    async def run() -> None:
        try:
            await server.start_async()
        except OSError as exc:
            print(f"apiserver: cannot listen on {args.bind}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
            raise SystemExit(1) from None
        print(f"apiserver ready on {server.url} (store: {server.store.name})", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop_async()

    try:
        asyncio.run(run())
    finally:
        server.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
