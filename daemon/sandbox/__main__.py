"""``python -m daemon.sandbox``: run the e-Box sandbox in the foreground (manual runs, demos).

Example::

    python -m daemon.sandbox --port 8765 --seed 7 \\
        --register-cert client.pem:0412345678 --fault error:0.1:503 --maintenance fedfin
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from daemon.sandbox.ebox import serve_sandbox
from daemon.sandbox.ebox.knobs import parse_fault_spec
from daemon.sandbox.ebox.server import EboxSandbox

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The command line of the foreground sandbox."""
    parser = argparse.ArgumentParser(prog="python -m daemon.sandbox", description="Run the e-Box sandbox.")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 = any free port; default 8765)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated content")
    parser.add_argument("--enterprises", type=int, default=3, help="number of seeded e-Boxes")
    parser.add_argument("--anchor", type=date.fromisoformat, help="date of the newest letters (YYYY-MM-DD)")
    parser.add_argument("--token-lifetime", type=int, default=600, help="access token lifetime in seconds")
    parser.add_argument("--register-cert", action="append", default=[], metavar="PEM:CBE",
                        help="register a client certificate for an enterprise (repeatable)")
    parser.add_argument("--fault", action="append", default=[], metavar="KIND[:RATE[:STATUS|DELAY]]",
                        help="inject faults: error:0.1:502, throttle:0.2:5, slow:1:2.5, truncate:1, corrupt:1, "
                             "expired_token:0.5")
    parser.add_argument("--maintenance", action="append", default=[], metavar="PROVIDER",
                        help="put a provider (nsso, fedfin) in maintenance")
    return parser


def _apply(sandbox: EboxSandbox, args: argparse.Namespace) -> list[str]:
    notes = []
    for spec in args.register_cert:
        pem_path, _, cbe = spec.rpartition(":")
        client_id = sandbox.register_client(Path(pem_path).read_bytes(), cbe)
        notes.append(f"client {client_id} -> enterprise {cbe}")
    for spec in args.fault:
        kind, options = parse_fault_spec(spec)
        rule = sandbox.add_fault(kind, **options)
        notes.append(f"fault {rule.as_dict()}")
    for provider in args.maintenance:
        sandbox.set_maintenance(provider)
        notes.append(f"provider {provider} in maintenance")
    return notes


def main(argv: Sequence[str] | None = None) -> int:
    """Start the sandbox, print its URLs as JSON, serve until interrupted."""
    args = build_parser().parse_args(argv)
    sandbox = serve_sandbox(args.host, args.port, seed=args.seed, enterprises=args.enterprises,
                            anchor=args.anchor, token_lifetime=args.token_lifetime)
    try:
        notes = _apply(sandbox, args)
        print(json.dumps({**sandbox.describe(), "notes": notes}, indent=2, ensure_ascii=False), flush=True)
        sandbox.wait()
    except KeyboardInterrupt:
        pass
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        sandbox.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
