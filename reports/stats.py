"""The statistics every report uses, in one place: confidence intervals, paired tests, win rates, Bradley-Terry.

Conventions:
  * every interval is a 95% interval, returned as [low, high] (a list, so it is JSON as is), or None when it
    cannot be computed (no data, or a bootstrap of one value);
  * bootstraps are percentile bootstraps with a fixed seed, so a report rendered twice prints the same figures;
  * past BOOTSTRAP_MAX_N values, a mean's interval is the normal one (mean +/- 1.96 standard errors): at that
    size the bootstrap and the normal interval agree to the printed digits, and the bootstrap would cost seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

Z95 = 1.959963984540054
BOOTSTRAP_ROUNDS = 2000
BOOTSTRAP_MAX_N = 20000
SEED = 20240601
Interval = list[float] | None


def _r(value: float, digits: int = 4) -> float:
    return round(float(value), digits)


def mean_ci(values: Sequence[float], rounds: int = BOOTSTRAP_ROUNDS, seed: int = SEED) -> Interval:
    """Bootstrap 95% CI of the mean (normal interval past BOOTSTRAP_MAX_N values)."""
    x = np.asarray(values, dtype=float)
    n = x.size
    if n < 2:
        return None
    if n > BOOTSTRAP_MAX_N:
        se = float(x.std(ddof=1)) / math.sqrt(n)
        m = float(x.mean())
        return [_r(m - Z95 * se), _r(m + Z95 * se)]
    rng = np.random.default_rng(seed)
    means = np.empty(rounds)
    chunk = max(1, 250_000 // n)  # resamples drawn at once: a few MB whatever n
    for start in range(0, rounds, chunk):
        stop = min(rounds, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = x[idx].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return [_r(low), _r(high)]


def wilson_ci(successes: float, n: int, z: float = Z95) -> Interval:
    """Wilson score interval of a proportion; `successes` may be fractional (a tie counted as half a success)."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(0.0, p * (1 - p)) / n + z * z / (4 * n * n)) / denom
    return [_r(max(0.0, centre - half)), _r(min(1.0, centre + half))]


def wilcoxon_p(deltas: Sequence[float]) -> float | None:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (zero differences dropped, as Wilcoxon did).
    1.0 when every difference is zero; None with no pairs."""
    from scipy.stats import wilcoxon

    d = np.asarray(deltas, dtype=float)
    if d.size == 0:
        return None
    if not np.any(d != 0):
        return 1.0
    return _r(float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue), 6)


def mcnemar_exact_p(pass_to_fail: int, fail_to_pass: int) -> float:
    """McNemar's exact test: two-sided binomial test of the discordant pairs against 1/2."""
    from scipy.stats import binomtest

    discordant = pass_to_fail + fail_to_pass
    if discordant == 0:
        return 1.0
    return _r(float(binomtest(min(pass_to_fail, fail_to_pass), discordant, 0.5).pvalue), 6)


def win_rate(scores: Sequence[float]) -> dict[str, Any]:
    """A model's scores against one opponent, each in [0, 1] (1 win, 0 loss, 0.5 tie, or a preference
    probability): win_rate = mean score (ties count half), standard_error = sample sd / sqrt(n) (as AlpacaEval
    reports it); wins / losses / ties count scores above / below / at 0.5."""
    x = np.asarray(scores, dtype=float)
    n = int(x.size)
    return {
        "win_rate": _r(x.mean(), 6) if n else None,
        "standard_error": _r(x.std(ddof=1) / math.sqrt(n), 6) if n > 1 else None,
        "wins": int((x > 0.5).sum()),
        "losses": int((x < 0.5).sum()),
        "ties": int((x == 0.5).sum()),
        "n": n,
    }


def _bt_strengths(
    i: np.ndarray, j: np.ndarray, s: np.ndarray, k: int, iterations: int = 200, tol: float = 1e-9
) -> np.ndarray:
    """Bradley-Terry maximum likelihood by the MM algorithm (Hunter 2004); a tie is half a win to each side.
    A tiny prior (one half-win each way against every other model) keeps undefeated models finite."""
    wins = np.full(k, 0.5 * (k - 1))
    np.add.at(wins, i, s)
    np.add.at(wins, j, 1.0 - s)
    games = np.full((k, k), 1.0) - np.eye(k)  # the prior's games
    np.add.at(games, (i, j), 1.0)
    np.add.at(games, (j, i), 1.0)
    p = np.ones(k)
    for _ in range(iterations):
        denom = (games / (p[:, None] + p[None, :])).sum(axis=1)
        new = wins / denom
        new /= np.exp(np.log(new).mean())
        if np.max(np.abs(new - p)) < tol:
            p = new
            break
        p = new
    return p


def bradley_terry(
    battles: Sequence[tuple[str, str, float]], rounds: int = 200, seed: int = SEED
) -> list[dict[str, Any]]:
    """Bradley-Terry ratings on the Elo scale (400 points = 10:1 odds, mean rating 1000), as Chatbot Arena
    reports them, with percentile-bootstrap 95% CIs over resampled battles. A battle is (model_a, model_b,
    score of a in [0, 1]). Sorted by rating, best first."""
    models = sorted({m for a, b, _ in battles for m in (a, b)})
    if len(models) < 2:
        return []
    index = {m: n for n, m in enumerate(models)}
    i = np.array([index[a] for a, _, _ in battles])
    j = np.array([index[b] for _, b, _ in battles])
    s = np.array([float(x) for _, _, x in battles])

    def elo(strengths: np.ndarray) -> np.ndarray:
        return np.asarray(1000.0 + 400.0 * np.log10(strengths))

    point = elo(_bt_strengths(i, j, s, len(models)))
    rng = np.random.default_rng(seed)
    boots = np.empty((rounds, len(models)))
    for r in range(rounds):
        pick = rng.integers(0, len(battles), size=len(battles))
        boots[r] = elo(_bt_strengths(i[pick], j[pick], s[pick], len(models)))
    low, high = np.percentile(boots, [2.5, 97.5], axis=0)
    out: list[dict[str, Any]] = [
        {
            "model": m,
            "rating": _r(point[n], 1),
            "ci95": [_r(low[n], 1), _r(high[n], 1)],
            "battles": int(((i == n) | (j == n)).sum()),
        }
        for n, m in enumerate(models)
    ]
    out.sort(key=lambda e: -float(e["rating"]))
    for rank, entry in enumerate(out, start=1):
        entry["rank"] = rank
    return out


def percentile(values: Sequence[float], q: float) -> float | None:
    return _r(float(np.percentile(np.asarray(values, dtype=float), q)), 3) if len(values) else None


def distribution_distance(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """How far apart two score distributions are: Wasserstein (earth mover's) distance in score points, and the
    two-sample Kolmogorov-Smirnov statistic with its p-value."""
    from scipy.stats import ks_2samp, wasserstein_distance

    if not len(a) or not len(b):
        return {"wasserstein": None, "ks_statistic": None, "ks_p": None}
    ks = ks_2samp(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    return {
        "wasserstein": _r(wasserstein_distance(a, b)),
        "ks_statistic": _r(float(ks.statistic)),
        "ks_p": _r(float(ks.pvalue), 6),
    }


def intervals_overlap(a: Interval, b: Interval) -> bool:
    """Whether two intervals overlap; an unknown interval overlaps everything (it rules nothing out)."""
    if a is None or b is None:
        return True
    return a[0] <= b[1] and b[0] <= a[1]
