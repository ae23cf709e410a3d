#!/usr/bin/env python
"""Run every benchmark of issue 6 and print all their tables (``make bench`` runs this).

Usage (repo root; loopback only; needs PostgreSQL and Redis)::

    .venv/bin/python tests/benchmarks/run_all.py [--only NAME,...] [--skip NAME,...] [--readme]

Each benchmark runs as its own process with its default arguments, one after the other (they
would disturb each other's numbers): graphql_overhead, live_latency (its default run), connections,
reads, throughput, subscription_flood. ``--readme`` also writes the tables of graphql_overhead,
connections, reads and throughput into their sections at the end of tests/benchmarks/README.md (between the
``<!-- run_all:NAME -->`` markers; the live-latency section is its author's). Exit status: non-zero
if any benchmark failed (an error, a failed request, a lost payment); targets are judged in the tables.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

BENCHMARKS = {
    "graphql_overhead": "1. GraphQL overhead",
    "live_latency": "2. Live latency",
    "connections": "3. Connections",
    "reads": "4. Reads",
    "throughput": "5. Throughput",
    "subscription_flood": "6. Subscription flood",
}
README_SECTIONS = ("graphql_overhead", "connections", "reads", "throughput")


def run(name: str, extra: list[str]) -> tuple[int, str, float]:
    started = time.monotonic()
    process = subprocess.run(
        [sys.executable, str(HERE / f"{name}.py"), *extra], cwd=REPO, stdout=subprocess.PIPE, text=True
    )  # stderr (progress) goes straight to the terminal
    return process.returncode, process.stdout.strip(), time.monotonic() - started


def write_readme(outputs: dict[str, str]) -> None:
    readme = HERE / "README.md"
    text = readme.read_text() if readme.exists() else "# Benchmarks\n"
    for name, output in outputs.items():
        output = re.sub(r"^### ", "#### ", output, flags=re.M)  # under the section's "### Latest results"
        start, end = f"<!-- run_all:{name} -->", f"<!-- /run_all:{name} -->"
        block = f"{start}\n{output}\n{end}"
        pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
        if pattern.search(text):
            text = pattern.sub(lambda _, block=block: block, text)
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--skip", default="")
    parser.add_argument("--readme", action="store_true", help="write the tables into tests/benchmarks/README.md")
    args = parser.parse_args()
    chosen = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    skipped = {n.strip() for n in args.skip.split(",") if n.strip()}
    unknown = [n for n in [*chosen, *skipped] if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")

    outputs: dict[str, str] = {}
    failed: list[str] = []
    for name in chosen:
        if name in skipped:
            continue
        print(f"\n######## {BENCHMARKS[name]} ({name}.py) ########", file=sys.stderr, flush=True)
        code, output, seconds = run(name, [])
        if name == "live_latency":
            output = f"### {BENCHMARKS[name]}: webhook POST → subscriber\n{output}"
        outputs[name] = output
        print(output, flush=True)
        print(f"\n({name}: exit {code}, {seconds:.0f} s)", flush=True)
        if code != 0:
            failed.append(name)
    if args.readme:
        write_readme({n: o for n, o in outputs.items() if n in README_SECTIONS})
    if failed:
        print(f"\nfailed or missed target: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
