"""`python -m bojdeploy.testing.xapi --port PORT`: run the XAPI simulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import threading

from bojdeploy.testing.xapi.server import XapiSimulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: where to listen, which credentials to accept, the guest IP delay."""
    parser = argparse.ArgumentParser(
        prog="python -m bojdeploy.testing.xapi",
        description="Serve a simulated one-host XCP-ng pool over XML-RPC (XenAPI).",
    )
    parser.add_argument("--port", type=int, required=True, help="TCP port (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--username", help="the only user accepted (default: any credentials)")
    parser.add_argument("--password", help="that user's password")
    parser.add_argument(
        "--ip-delay",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds after a VM starts until its guest metrics report an IP (default 1)",
    )
    args = parser.parse_args(argv)
    if (args.username is None) != (args.password is None):
        parser.error("--username and --password go together")
    return args


def main(argv: list[str] | None = None) -> None:
    """Start the simulator, print where it listens, serve until SIGINT or SIGTERM."""
    args = parse_args(argv)
    simulator = XapiSimulator(args.username, args.password, args.ip_delay)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    url = simulator.start(args.host, args.port)
    who = f"user {args.username}" if args.username is not None else "any credentials"
    print(
        f"XAPI simulator listening on {url} ({who}, {len(simulator.templates())} templates)",
        flush=True,
    )
    stopping.wait()
    simulator.stop()


if __name__ == "__main__":
    main()
