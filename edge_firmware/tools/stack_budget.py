"""Worst-case stack depth of the firmware core, from GCC's -fstack-usage/-fcallgraph-info.

    python tools/stack_budget.py BUILD_DIR TASK_STACK_BYTES

Reads every .ci file (GCC's call graph with each function's frame size), walks every
call chain and fails when the deepest one, plus what the board's ports may use below
it, exceeds the task's stack, or when one function's frame is large enough to hide a
buffer that belongs in static memory. Calls through virtual ports (Flash, Transport,
KeyValueStore, Stager) are not in the graph: PORT_ALLOWANCE stands for them (the TLS
upload is the deepest, measured by Espressif at ~6 KiB with mbedTLS).
"""

from __future__ import annotations

import re
import sys
from functools import cache
from pathlib import Path

PORT_ALLOWANCE = 8 * 1024
MAX_FRAME = 1024  # a bigger frame is a buffer that should live in the object, not on the stack

NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
FRAME = re.compile(r"\\n(\d+) bytes \((static|dynamic[^)]*)\)")


def main(build_dir: str, task_stack: int) -> int:
    frames: dict[str, int] = {}
    names: dict[str, str] = {}
    calls: dict[str, set[str]] = {}
    for ci in Path(build_dir).glob("*.ci"):
        text = ci.read_text()
        for title, label in NODE.findall(text):
            if match := FRAME.search(label):
                frames[title] = int(match.group(1))
                names[title] = label.split("\\n")[0]
        for source, target in EDGE.findall(text):
            calls.setdefault(source, set()).add(target)

    @cache
    def deepest(function: str, path: frozenset[str] = frozenset()) -> tuple[int, tuple[str, ...]]:
        best: tuple[int, tuple[str, ...]] = (0, ())
        for callee in calls.get(function, ()):
            if callee in path or callee not in frames:
                continue  # recursion is not used in the core; library calls have no frame here
            depth = deepest(callee, path | {function})
            best = max(best, depth)
        return frames.get(function, 0) + best[0], (function, *best[1])

    worst = max((deepest(f) for f in frames), default=(0, ()))
    big = sorted((size, names[f]) for f, size in frames.items() if size > MAX_FRAME)
    print(f"deepest core call chain: {worst[0]} bytes")
    for function in worst[1]:
        print(f"  {frames[function]:6d}  {names[function]}")
    print(f"+ {PORT_ALLOWANCE} bytes for the ports = {worst[0] + PORT_ALLOWANCE} of {task_stack} bytes of task stack")
    failed = False
    for size, name in big:
        print(f"FAIL: {name} has a {size}-byte frame (limit {MAX_FRAME}): keep buffers off the stack")
        failed = True
    if worst[0] + PORT_ALLOWANCE > task_stack:
        print("FAIL: the deepest chain does not fit the task's stack")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
