"""Cost of evaluating 100 alert rules on one pair-state update.

AlertManager.update (compiled rule trees + cooldown/hysteresis state machine + firing) against a
reference in the same run: a plain chain of hand-written Python lambdas testing the same
conditions on the same updates (no state, no firing records). Target: well under 1 ms/update.
Prints the ratio as the last line.
"""

from __future__ import annotations

import random
import time

from qdash.alerts import AlertManager

N_UPDATES = 20_000
PAIR = "BTCUSDT/ETHUSDT"


def rule_specs(n: int = 100) -> list[tuple[str, object]]:
    """(text, reference lambda(v, p)) pairs of six shapes with varying thresholds."""
    specs = []
    for i in range(n):
        t = 1.5 + (i % 10) * 0.15
        shape = i % 6
        if shape == 0:
            specs.append((f"zscore > {t}", lambda v, p, t=t: v["zscore"] > t))
        elif shape == 1:
            specs.append((f"zscore > {t} and corr > 0.8",
                          lambda v, p, t=t: v["zscore"] > t and v["corr"] > 0.8))
        elif shape == 2:
            specs.append((f"abs(zscore) > {t} or half_life < 5",
                          lambda v, p, t=t: abs(v["zscore"]) > t or v["half_life"] < 5))
        elif shape == 3:
            specs.append((f"zscore crosses above {t} reset {t - 0.5}",
                          lambda v, p, t=t: p and p["zscore"] <= t < v["zscore"]))
        elif shape == 4:
            specs.append(("not adf_p < 0.05 and liquidity_score > 0.3",
                          lambda v, p: not v["adf_p"] < 0.05 and v["liquidity_score"] > 0.3))
        else:
            specs.append((f"(zscore < -{t} or zscore > {t}) and age_y_s < 5",
                          lambda v, p, t=t: (v["zscore"] < -t or v["zscore"] > t)
                          and v["age_y_s"] < 5))
    return specs


def updates(n: int) -> list[dict]:
    rng = random.Random(7)
    z, out = 0.0, []
    for _ in range(n):
        z = 0.97 * z + rng.gauss(0, 0.35)
        out.append({"zscore": z, "spread": z * 3.1, "price_y": 60000.0, "price_x": 3400.0,
                    "beta_ols": 17.6, "beta_kalman": 17.5, "corr": 0.75 + rng.random() * 0.2,
                    "adf_p": rng.random() * 0.1, "coint_p": rng.random() * 0.1,
                    "half_life": 3 + rng.random() * 20, "liquidity_score": rng.random(),
                    "volume_y": 12.0, "volume_x": 150.0, "age_y_s": rng.random() * 6,
                    "age_x_s": rng.random() * 6})
    return out


def main() -> None:
    specs = rule_specs()
    data = updates(N_UPDATES)
    manager = AlertManager(None)
    for i, (text, _) in enumerate(specs):
        manager.add(text, name=f"r{i:03d}", cooldown_s=(i % 3) * 30)
    lambdas = [f for _, f in specs]

    def reference() -> int:
        hits, prev = 0, None
        for v in data:
            for f in lambdas:
                if f(v, prev):
                    hits += 1
            prev = v
        return hits

    def ours() -> int:
        fired = 0
        for k, v in enumerate(data):
            fired += len(manager.update(PAIR, v, 1_700_000_000_000 + k * 1000))
        return fired

    best_ref = best_ours = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        hits = reference()
        best_ref = min(best_ref, time.perf_counter() - t0)
        manager._states.clear()
        manager._prev.clear()
        t0 = time.perf_counter()
        fired = ours()
        best_ours = min(best_ours, time.perf_counter() - t0)
    per_ref = best_ref / N_UPDATES * 1e6
    per_ours = best_ours / N_UPDATES * 1e6
    print(f"rules: {len(specs)}, updates: {N_UPDATES}, condition hits: {hits}, "
          f"firings after cooldown/hysteresis: {fired}")
    print(f"reference lambda chain: {per_ref:.1f} µs/update")
    print(f"AlertManager.update:    {per_ours:.1f} µs/update (target < 1000 µs)")
    print(f"ratio vs plain lambda chain: {per_ours / per_ref:.2f}x the time; "
          f"{per_ours:.0f} µs per update of 100 rules = {per_ours / 1000:.3f} of the 1 ms budget")


if __name__ == "__main__":
    main()
