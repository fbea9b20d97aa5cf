"""Durations drawn at random: handle times (an agent's accept → resolve) and customers' patience (arrival →
abandon). Given by mean and, for lognormal, standard deviation, the two figures a desk's reports show."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

Kind = Literal["exponential", "lognormal", "fixed"]
KINDS: tuple[Kind, ...] = get_args(Kind)


@dataclass(frozen=True, slots=True)
class Distribution:
    kind: Kind
    mean_s: float
    sd_s: float = 0.0

    def draw(self, rnd: random.Random) -> float:
        if self.kind == "exponential":
            return rnd.expovariate(1.0 / self.mean_s)
        if self.kind == "lognormal":
            # the normal's parameters that give this mean and standard deviation (moment matching)
            sigma2 = math.log1p((self.sd_s / self.mean_s) ** 2)
            return rnd.lognormvariate(math.log(self.mean_s) - sigma2 / 2, math.sqrt(sigma2))
        return self.mean_s


def distribution(raw: Any, where: str) -> Distribution:
    """``{"distribution": "lognormal", "mean_s": 300, "sd_s": 200}``; a bare number is an exponential mean.
    ``ValueError`` names ``where`` and what is wrong."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        raw = {"distribution": "exponential", "mean_s": raw}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: a distribution is a number (exponential mean) or an object")
    unknown = set(raw) - {"distribution", "mean_s", "sd_s"}
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    kind = raw.get("distribution", "exponential")
    if kind not in KINDS:
        raise ValueError(f"{where}.distribution: one of {', '.join(KINDS)}, not {kind!r}")
    mean: Any = raw.get("mean_s")
    sd: Any = raw.get("sd_s")
    if not _positive(mean):
        raise ValueError(f"{where}.mean_s: a positive number of seconds")
    if kind == "lognormal" and not _positive(sd):
        raise ValueError(f"{where}.sd_s: a lognormal needs a positive standard deviation")
    if kind != "lognormal" and sd is not None:
        raise ValueError(f"{where}.sd_s: only a lognormal takes a standard deviation")
    return Distribution(kind, float(mean), float(sd or 0.0))


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
