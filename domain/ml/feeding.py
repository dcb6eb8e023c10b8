"""Feeding-curve optimisation: a random forest learns how past curves turned out, then a search
over welfare-bounded 14-day, 2-meal curves picks the one it predicts best for a lot.

Each past lot is described by its curve resampled to 14 days, how irregular the hand was, its
barn temperature and starting weight; the forest predicts the consumers' mean rating (1-5) and
the mean liver grade score (C=2.1 .. A+=4.6). The objective is their mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain.errors import InsufficientData
from domain.models import ConsumerFeedback, FeedingRecord, Lot, SqalSample
from domain.physiology import GRADE_SCORE

DAYS = 14
MIN_LOTS = 20
#: Welfare bounds of a proposed curve: grams per meal, and the largest rise between two days.
MIN_MEAL_G = 200.0
MAX_MEAL_G = 600.0
MAX_DAILY_RISE_G = 60.0
EVENING_SHARE = (0.98, 1.02)


@dataclass(frozen=True)
class Context:
    lot_id: int
    initial_weight_g: float
    mean_temperature_c: float
    current_curve: np.ndarray  # per-day mean dose over DAYS days
    irregularity: float


def _resample(per_day: np.ndarray) -> np.ndarray:
    return np.interp(np.linspace(0, 1, DAYS), np.linspace(0, 1, len(per_day)), per_day)


def _irregularity(doses: np.ndarray) -> float:
    smooth = pd.Series(doses).rolling(5, center=True, min_periods=1).median().to_numpy()
    return float(np.std(doses / np.maximum(smooth, 1.0) - 1.0))


def lot_table(session: Session) -> tuple[pd.DataFrame, dict[int, Context]]:
    """Per-lot features and outcomes; contexts for every lot that has records."""
    records = pd.DataFrame(
        session.execute(
            select(FeedingRecord.lot_id, FeedingRecord.day, FeedingRecord.dose_g).order_by(
                FeedingRecord.lot_id, FeedingRecord.day, FeedingRecord.meal.desc()
            )
        ).all(),
        columns=["lot_id", "day", "dose_g"],
    )
    lots = {lot.id: lot for lot in session.scalars(select(Lot))}
    ratings = select(ConsumerFeedback.lot_id, func.avg(ConsumerFeedback.rating)).group_by(
        ConsumerFeedback.lot_id
    )
    rating = {lot_id: value for lot_id, value in session.execute(ratings).tuples()}
    grades: dict[int, list[float]] = {}
    for lot_id, grade in session.execute(select(SqalSample.lot_id, SqalSample.grade)).tuples():
        grades.setdefault(lot_id, []).append(GRADE_SCORE[grade])  # type: ignore[index]
    rows, contexts = [], {}
    for lot_id, group in records.groupby("lot_id"):
        lot = lots[int(lot_id)]
        doses = group.dose_g.to_numpy()
        per_day = group.groupby("day").dose_g.mean().to_numpy()
        context = Context(
            int(lot_id),
            lot.initial_weight_g,
            lot.mean_temperature_c or float("nan"),
            _resample(per_day),
            _irregularity(doses),
        )
        contexts[int(lot_id)] = context
        if lot_id in rating and lot_id in grades and lot.mean_temperature_c is not None:
            rows.append(
                {
                    **_features(context, context.current_curve, context.irregularity),
                    "rating": float(rating[lot_id]),
                    "grade": float(np.mean(grades[lot_id])),
                }
            )
    return pd.DataFrame(rows), contexts


def _features(context: Context, curve: np.ndarray, irregularity: float) -> dict[str, float]:
    return {
        **{f"day_{i + 1}": float(v) for i, v in enumerate(curve)},
        "irregularity": irregularity,
        "temperature_c": context.mean_temperature_c,
        "initial_weight_g": context.initial_weight_g,
    }


def train(table: pd.DataFrame, *, seed: int = 0) -> tuple[RandomForestRegressor, float]:
    if len(table) < MIN_LOTS:
        raise InsufficientData(
            f"{len(table)} finished lots with ratings and grades; at least {MIN_LOTS} needed"
        )
    x = table.drop(columns=["rating", "grade"]).to_numpy()
    y = table[["rating", "grade"]].to_numpy()
    forest = RandomForestRegressor(
        n_estimators=200, min_samples_leaf=3, oob_score=True, random_state=seed, n_jobs=1
    )
    forest.fit(x, y)
    return forest, float(forest.oob_score_)


def candidate_curves(rng: np.random.Generator, count: int) -> np.ndarray:
    """Concave ramps first + (last - first) * t**shape, kept within the welfare bounds."""
    first = rng.uniform(MIN_MEAL_G, 300.0, count)
    last = rng.uniform(400.0, MAX_MEAL_G, count)
    shape = rng.uniform(0.4, 1.2, count)
    t = np.linspace(0, 1, DAYS)
    curves = first[:, None] + (last - first)[:, None] * t[None, :] ** shape[:, None]
    rises = np.diff(curves, axis=1).max(axis=1)
    return curves[rises <= MAX_DAILY_RISE_G]


def optimise(
    forest: RandomForestRegressor, context: Context, *, candidates: int = 4000, seed: int = 0
) -> dict[str, Any]:
    """The best candidate for this lot, fed with a regular hand, against its current curve."""
    rng = np.random.default_rng(seed)
    curves = candidate_curves(rng, candidates)
    regular = 0.03
    rows = [list(_features(context, curve, regular).values()) for curve in curves]
    predicted = forest.predict(np.asarray(rows))
    objective = predicted.mean(axis=1)
    best = int(np.argmax(objective))
    current = forest.predict(
        np.asarray([list(_features(context, context.current_curve, context.irregularity).values())])
    )[0]
    curve = curves[best]
    meals: list[dict[str, Any]] = [
        {"day": day + 1, "meal": meal, "dose_g": round(float(curve[day] * share), 1)}
        for day in range(DAYS)
        for meal, share in zip(("morning", "evening"), EVENING_SHARE, strict=True)
    ]
    return {
        "optimized_curve": meals,
        "total_maize_kg": round(sum(m["dose_g"] for m in meals) / 1000.0, 3),
        "predicted": {
            "rating": round(float(predicted[best][0]), 3),
            "grade_score": round(float(predicted[best][1]), 3),
        },
        "current": {
            "rating": round(float(current[0]), 3),
            "grade_score": round(float(current[1]), 3),
        },
        "expected_improvement": round(float(objective[best] - current.mean()), 3),
        "constraints": {
            "min_meal_g": MIN_MEAL_G,
            "max_meal_g": MAX_MEAL_G,
            "max_daily_rise_g": MAX_DAILY_RISE_G,
        },
    }
