"""WGAN as optimal transport: a critic with gradient penalty estimates W1 for a fixed generator.

Run: ``python examples/wgan_ot.py [OUT_DIR]``. Prints the critic estimate against the exact W1
(a linear program on the samples) and writes ``wgan_ot.png`` with the optimal coupling.
"""

import sys
from pathlib import Path

import numpy as np

from mfgsolve._bench import load_benchmark
from mfgsolve.dynamics import critic_w1, exact_w1

# the W1 pairs and the figure of the `dynamics` benchmark (benchmarks/dynamics.py)
_DYNAMICS = load_benchmark(Path(__file__).resolve().parents[1], "dynamics")
plot_w1, w1_pairs = _DYNAMICS.plot_w1, _DYNAMICS.w1_pairs


def main(out_dir: Path) -> None:
    entries = []
    for name, (x, y) in w1_pairs(np.random.default_rng(0)).items():
        exact, plan = exact_w1(x, y)
        critic = critic_w1(x, y, seed=0)
        rel = abs(critic.w1 - exact) / exact
        print(f"{name:28s} exact W1 {exact:.4f}  critic {critic.w1:.4f}  rel. error {rel:.2%}")
        entries.append(
            {"name": name, "x": x, "y": y, "exact": exact, "plan": plan, "critic": critic}
        )
    plot_w1(entries, out_dir / "wgan_ot.png")
    print(f"figure: {out_dir / 'wgan_ot.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/wgan_ot"))
