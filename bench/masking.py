"""Cost of the one masking function (docs/contract.md#secrets-and-masking) on step-sized outputs, and of the
SSH runner.

    .venv/bin/python bench/masking.py

Prints the time to mask a 10 KB step output (the artifact cap) as text and inside a JSON
structure, with 0, 10 and 100 resolved values, so the price of masking every sink is known.
"""

from __future__ import annotations

import os
import random
import statistics
import string
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconductor.settings")


def main() -> None:
    from execution.masking import mask_data, mask_text

    rng = random.Random(7)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(400)]
    line = lambda: " ".join(rng.choices(words, k=12))  # noqa: E731
    text = "\n".join(line() for _ in range(200))[:10_240]
    text += "\nAuthorization: Bearer abc.def.ghi password=hunter2 postgres://u:p@h/db AKIAIOSFODNN7EXAMPLE"
    data = {
        "stdout": text,
        "stderr": text[:2000],
        "headers": {"Authorization": "x", "Accept": "y"},
        "rows": [[1, "a"]] * 50,
    }
    for count in (0, 10, 100):
        values = ["".join(rng.choices(string.ascii_letters, k=32)) for _ in range(count)]
        for name, fn, arg in (("text", mask_text, text), ("json", mask_data, data)):
            samples = []
            for _ in range(50):
                started = time.perf_counter()
                fn(arg, values)
                samples.append((time.perf_counter() - started) * 1000)
            print(
                f"mask_{name:4} 10 KB, {count:3} values: p50 {statistics.median(samples):6.2f} ms, "
                f"max {max(samples):6.2f} ms"
            )


if __name__ == "__main__":
    main()
