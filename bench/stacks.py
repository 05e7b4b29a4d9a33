"""`python -m bench.stacks FILE [N]`: the top of a py-spy raw profile (collapsed stacks):
share of samples by module and by our own functions (inclusive), for closing notes."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path


def _where(frame: str) -> str:
    return frame.split(" (", 1)[1].rstrip(")") if " (" in frame else ""


def summarize(path: Path, top: int = 25) -> str:
    modules: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        # py-spy writes `function (package/module.py:line)`, paths relative to sys.path.
        modules[_where(frames[-1]).split("/", 1)[0] or "?"] += n
        seen = set()
        for frame in frames:
            where = _where(frame)
            if where.startswith("app/"):
                name = f"{frame.split(' (', 1)[0]} {where.split(':', 1)[0]}"
                if name not in seen:
                    seen.add(name)
                    ours[name] += n
    if not total:
        return "no samples"
    out = [f"{total} samples"]
    out += [f"{v / total:6.1%}  {k}" for k, v in modules.most_common(12)]
    out.append("our functions (inclusive):")
    out += [f"{v / total:6.1%}  {k}" for k, v in ours.most_common(top)]
    return "\n".join(out)


if __name__ == "__main__":
    print(summarize(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 25))
