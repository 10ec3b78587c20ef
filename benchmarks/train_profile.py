"""Where crossrank's trainer step goes on this machine: torch.profiler over a few real steps.

Runs the same crossrank trainer as ``train_throughput.py`` (same data, groups and options;
no sentence-transformers run) under ``torch.profiler`` and prints the operators by self CPU
time (and, with ``--device cuda``, by self GPU time), with input shapes when ``--shapes`` is
given.

Usage:
    python benchmarks/train_profile.py --steps 5 --warmup 1 --groups-per-step 2 --max-length 256
"""

from __future__ import annotations

import sys
from pathlib import Path

from torch.profiler import profile

sys.path.insert(0, str(Path(__file__).parent))
import train_throughput

ROWS = 25


def main() -> None:
    shapes = "--shapes" in sys.argv
    if shapes:
        sys.argv.remove("--shapes")
    args = train_throughput.parse_args()
    groups = train_throughput.build_groups(args.data)
    fit = train_throughput.Trainer.fit

    def profiled_fit(self: train_throughput.Trainer) -> object:
        with profile(record_shapes=shapes) as prof:
            result = fit(self)
        table = prof.key_averages(group_by_input_shape=shapes)
        print(table.table(sort_by="self_cpu_time_total", row_limit=ROWS, max_name_column_width=40))
        if args.device == "cuda":  # what the GPU itself spent its time on
            print(table.table(sort_by="self_device_time_total", row_limit=ROWS,
                              max_name_column_width=40))  # fmt: skip
        return result

    train_throughput.Trainer.fit = profiled_fit
    pairs_per_s = train_throughput.run_crossrank(args, groups, args.precision or "fp32")
    print(f"crossrank pairs/s under the profiler: {pairs_per_s:.2f}")


if __name__ == "__main__":
    main()
