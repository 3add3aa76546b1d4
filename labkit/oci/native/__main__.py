"""``python -m labkit.oci.native``: labkit's runtime with runc's command line.

    python -m labkit.oci.native [--root DIR] create ID --bundle B [--pid-file F]
    python -m labkit.oci.native start ID
    python -m labkit.oci.native state ID          # JSON like `runc state`
    python -m labkit.oci.native kill ID [SIGNAL] [--all]
    python -m labkit.oci.native delete ID [--force]
    python -m labkit.oci.native run ID --bundle B [--detach]   # exits with the container's status
    python -m labkit.oci.native exec ID -- CMD...
    python -m labkit.oci.native list

Errors print one line (``labkit-native: ...``) and exit 1; there are no tracebacks.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys


def _signal(text: str) -> int:
    t = text.upper()
    if t.isdigit():
        return int(t)
    if not t.startswith("SIG"):
        t = "SIG" + t
    try:
        return int(signal.Signals[t])
    except KeyError:
        raise SystemExit(f"labkit-native: unknown signal {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="labkit-native", description="labkit's OCI runtime (runc-shaped CLI)")
    p.add_argument("--root", help="state directory (default: <labkit state>/native)")
    p.add_argument("--log", help="write the container's stdout/stderr to this file")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("create", "run"):
        s = sub.add_parser(name)
        s.add_argument("id")
        s.add_argument("--bundle", "-b", default=".")
        s.add_argument("--pid-file")
        if name == "run":
            s.add_argument("--detach", "-d", action="store_true")
    for name in ("start", "state"):
        sub.add_parser(name).add_argument("id")
    k = sub.add_parser("kill")
    k.add_argument("id")
    k.add_argument("signal", nargs="?", default="TERM")
    k.add_argument("--all", "-a", action="store_true")
    d = sub.add_parser("delete")
    d.add_argument("id")
    d.add_argument("--force", "-f", action="store_true")
    e = sub.add_parser("exec")
    e.add_argument("id")
    e.add_argument("command", nargs=argparse.REMAINDER)
    sub.add_parser("list")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from labkit.oci.native.container import NativeContainer, NativeError, default_root

    root = args.root or str(default_root())
    try:
        if args.cmd in ("create", "run"):
            detach = args.cmd == "create" or args.detach
            c = NativeContainer(args.bundle, args.id, root=root, stdin=0 if not detach else None,
                                stdout=None if args.log else 1, stderr=None if args.log else 2,
                                log_path=args.log, detach=detach)
            pid = c.create(fifo=args.cmd == "create", start_now=args.cmd == "run")
            if args.pid_file:
                with open(args.pid_file, "w") as f:
                    f.write(str(pid))
            if args.cmd == "create" or detach:
                return 0
            try:
                st = c.wait()
            finally:
                c.delete(force=True)
            return st.code
        if args.cmd == "list":
            rows = []
            if os.path.isdir(root):
                for cid in sorted(os.listdir(root)):
                    try:
                        rows.append(NativeContainer.load(cid, root).state())
                    except NativeError:
                        continue
            print(f"{'ID':<24} {'PID':>8} {'STATUS':<8} BUNDLE")
            for r in rows:
                print(f"{r['id']:<24} {r['pid'] or 0:>8} {r['status']:<8} {r['bundle']}")
            return 0
        c = NativeContainer.load(args.id, root)
        if args.cmd == "start":
            c.start()
        elif args.cmd == "state":
            print(json.dumps(c.state(), indent=2))
        elif args.cmd == "kill":
            c.kill(_signal(args.signal), all=args.all)
        elif args.cmd == "delete":
            c.delete(force=args.force)
        elif args.cmd == "exec":
            cmd = [a for a in args.command if a != "--"] if args.command[:1] == ["--"] else args.command
            out = c.exec(cmd)
            sys.stdout.buffer.write(out.stdout)
            sys.stderr.buffer.write(out.stderr)
            return out.exit_code
        return 0
    except NativeError as exc:
        print(f"labkit-native: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
