"""The top entries of py-spy raw profiles (`--profile DIR` of `bench/api.py` and
`bench/sse.py`): per function, the share of samples it was running in itself and the
share it was on the stack (itself or what it called), over all processes profiled.

    .venv/bin/python bench/profile.py DIR/api-c16-0.txt [--top 25] [--process worker]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# py-spy's raw format: "process 123:"python -m gateway serve";frame;frame... count"
_PROCESS = re.compile(r'^process \d+:"(?P<cmd>[^"]*)"')
_LOCATION = re.compile(r" \((?P<file>[^():]+)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """`function (path/to/module.py:12)` as `function (module.py)`."""
    found = _LOCATION.search(frame)
    if not found:
        return frame
    return f"{frame[: found.start()]} ({'/'.join(Path(found['file']).parts[-2:])})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--process", help="only processes whose command line contains this")
    args = parser.parse_args()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for path in args.files:
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            frames = stack.split(";")
            process = _PROCESS.match(frames[0])
            if process is not None:
                if args.process and args.process not in process["cmd"]:
                    continue
                frames = frames[1:]
            if not frames or not count_text.isdigit():
                continue
            count = int(count_text)
            total += count
            names = [frame_name(frame) for frame in frames]
            own[names[-1]] += count
            for name in set(names):
                inclusive[name] += count
    print(f"{total:,} samples")
    print(f"{'own':>6} {'total':>6}  function")
    for name, count in own.most_common(args.top):
        print(f"{count / total:6.1%} {inclusive[name] / total:6.1%}  {name}")
    print("\nmost often on the stack (of our code and the libraries):")
    for name, count in inclusive.most_common(args.top * 2):
        if "<module>" in name or "run_forever" in name or name.startswith("process "):
            continue
        print(f"{count / total:6.1%}  {name}")


if __name__ == "__main__":
    main()
