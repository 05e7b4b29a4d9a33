"""`python -m bench.run [--smoke] [--only NAME]`: every benchmark figure, each a ratio against a
baseline measured in the same run on this machine; prints a table and writes
bench/results.json. Starts its own PostgreSQL (fsync on), simulator and app processes."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench import figures
from bench.figures import Bench, Figure, Sizes
from bench.harness import machine, postgres

RESULTS = Path(__file__).resolve().parent / "results.json"

STEPS: dict[str, Callable[[Bench], Awaitable[Figure | list[Figure]]]] = {
    "intake": figures.kickback_intake,
    "pays": figures.checkout_pays,
    "events": figures.event_delivery,
    "reads": figures.reads_and_memory,
    "reconcile": figures.reconcile_search_calls,
}


def _fmt(x: float) -> str:
    if math.isnan(x):
        return "-"
    return f"{x:,.1f}" if x >= 10 else f"{x:.2f}"


def _rounded(value: object) -> object:
    """Four significant digits are all a benchmark can claim."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def table(rows: list[Figure]) -> str:
    head = ("figure", "value", "baseline", "unit", "ratio", "target", "ok", "p50/p99 ms")
    lines = [head]
    for f in rows:
        p = f.details
        lat = f"{_fmt(p['p50_ms'])}/{_fmt(p['p99_ms'])}" if "p50_ms" in p else "-"
        lines.append(
            (
                f.name,
                _fmt(f.value),
                _fmt(f.baseline),
                f.unit,
                f"{f.ratio:.2f}" if f.ratio >= 0.1 else f"{f.ratio:.4f}",
                f.target,
                "yes" if f.ok else "NO",
                lat,
            )
        )
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it runs")
    parser.add_argument("--only", choices=sorted(STEPS), action="append")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    sizes = Sizes.smoke() if args.smoke else Sizes()
    output = args.output or (None if args.smoke else RESULTS)
    started = time.monotonic()
    results: list[Figure] = []
    logs = Path(tempfile.mkdtemp(prefix="rp-bench-"))
    with postgres() as pg:
        bench = Bench(pg=pg, sizes=sizes, logs=logs)
        for name, step in STEPS.items():
            if args.only and name not in args.only:
                continue
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            got = await step(bench)
            batch = got if isinstance(got, list) else [got]
            results.extend(batch)
            for f in batch:
                print(
                    f"bench:   {f.name}: {f.ratio:.4g} ({'ok' if f.ok else 'MISSED'} {f.target})"
                    f" in {time.monotonic() - t0:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
    print(table(results))
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "smoke": args.smoke,
        "seconds": round(time.monotonic() - started, 1),
        "sizes": asdict(sizes),
        "figures": [asdict(f) for f in results],
    }
    if output is not None:
        output.write_text(json.dumps(_rounded(report), indent=2, default=str) + "\n")
        print(f"bench: wrote {output}; process logs in {logs}", file=sys.stderr)
    if args.smoke:
        # Tiny sizes say nothing about targets; a smoke run fails only when requests failed.
        failed = [f.name for f in results if f.details.get("errors")]
        if failed:
            print(f"bench: requests failed in: {', '.join(failed)}", file=sys.stderr)
        return 1 if failed else 0
    return 0 if all(f.ok for f in results) else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))
