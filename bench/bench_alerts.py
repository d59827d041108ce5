"""Cost of evaluating 100 alert rules on one pair-state update.

AlertManager.update (compiled rule trees + cooldown/hysteresis state machine + firing) against a
reference in the same run: a plain chain of hand-written Python lambdas testing the same
conditions on the same updates (no state, no firing records). Target: well under 1 ms/update.
The ratio is AlertManager's time per update / the lambda chain's (how much the rule engine's
state and firing cost over bare conditions); the last line is ``RESULT {json}`` of the figures.
The rules use the metric names of ``qdash.analytics.pair_metrics`` (``half_life_s``,
``liquidity_pair``): an unknown name is an error at ``AlertManager.add``.

Run: python bench/bench_alerts.py [--quick]   (--quick: 500 updates instead of 20,000)
"""

from __future__ import annotations

import argparse
import json
import random
import time

from qdash.alerts import AlertManager

N_UPDATES = 20_000
N_QUICK = 500
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
            specs.append((f"abs(zscore) > {t} or half_life_s < 5",
                          lambda v, p, t=t: abs(v["zscore"]) > t or v["half_life_s"] < 5))
        elif shape == 3:
            specs.append((f"zscore crosses above {t} reset {t - 0.5}",
                          lambda v, p, t=t: p and p["zscore"] <= t < v["zscore"]))
        elif shape == 4:
            specs.append(("not adf_p < 0.05 and liquidity_pair > 0.3",
                          lambda v, p: not v["adf_p"] < 0.05 and v["liquidity_pair"] > 0.3))
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
                    "half_life_s": 3 + rng.random() * 20, "liquidity_pair": rng.random(),
                    "volume_y": 12.0, "volume_x": 150.0, "age_y_s": rng.random() * 6,
                    "age_x_s": rng.random() * 6})
    return out


def manager_of(specs) -> AlertManager:
    """A fresh manager (no cooldown or hysteresis state) holding the rules of ``specs``."""
    manager = AlertManager(None)
    for i, (text, _) in enumerate(specs):
        manager.add(text, name=f"r{i:03d}", cooldown_s=(i % 3) * 30)
    return manager


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"{N_QUICK} updates (a smoke run)")
    n_updates = N_QUICK if ap.parse_args().quick else N_UPDATES
    specs = rule_specs()
    data = updates(n_updates)
    lambdas = [f for _, f in specs]

    def reference() -> int:
        hits, prev = 0, None
        for v in data:
            for f in lambdas:
                if f(v, prev):
                    hits += 1
            prev = v
        return hits

    def ours(manager: AlertManager) -> int:
        fired = 0
        for k, v in enumerate(data):
            fired += len(manager.update(PAIR, v, 1_700_000_000_000 + k * 1000))
        return fired

    best_ref = best_ours = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        hits = reference()
        best_ref = min(best_ref, time.perf_counter() - t0)
        manager = manager_of(specs)
        t0 = time.perf_counter()
        fired = ours(manager)
        best_ours = min(best_ours, time.perf_counter() - t0)
    per_ref = best_ref / n_updates * 1e6
    per_ours = best_ours / n_updates * 1e6
    print(f"rules: {len(specs)}, updates: {n_updates}, condition hits: {hits}, "
          f"firings after cooldown/hysteresis: {fired}")
    print(f"reference lambda chain: {per_ref:.1f} µs/update")
    print(f"AlertManager.update:    {per_ours:.1f} µs/update (target < 1000 µs)")
    print(f"ratio vs plain lambda chain: {per_ours / per_ref:.2f}x the time; "
          f"{per_ours:.0f} µs per update of 100 rules = {per_ours / 1000:.3f} of the 1 ms budget")
    print("RESULT " + json.dumps({"rules": len(specs), "updates": n_updates, "hits": hits,
                                  "fired": fired, "ref_us": per_ref, "ours_us": per_ours,
                                  "ratio": per_ours / per_ref}))


if __name__ == "__main__":
    main()
