"""One demo lot from plan to rows: feeding records, outcomes, SQAL samples, feedback, anomalies.

`simulate_lot` is pure: given a plan, the gaveur's habits and a per-lot random generator it
returns the rows to insert. domain/demo.py plans the lots and writes the rows in chunks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np

from domain import physiology as phy
from domain.demo.reference import COMMENTS, GENETICS
from domain.models import AnomalyKind, Grade, LotStatus, Meal

MEAL_ORDER = (Meal.MORNING.value, Meal.EVENING.value)
FEEDBACK_DELAY_DAYS = (7, 60)


@dataclass(frozen=True)
class GaveurHabits:
    """What a gaveur does the same way on every lot: clustering should find these groups."""

    gaveur_id: int
    style: float  # dose multiplier, 0.9..1.1
    irregularity: float  # relative meal-to-meal dose noise
    efficiency: float  # g of weight gained per g of maize
    mortality_rate: float  # deaths per duck per meal at comfortable temperature


@dataclass(frozen=True)
class LotPlan:
    id: int
    code: str
    site_id: int
    site_code: str
    gaveur_id: int
    start_date: date
    duration_days: int
    status: LotStatus
    slaughter_date: date | None
    recorded_meals: int  # meals with a feeding record (fewer than planned while feeding)

    @property
    def ideal_slaughter_date(self) -> date:
        return self.start_date + timedelta(days=self.duration_days)


@dataclass
class LotRows:
    lot: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    anomalies: list[dict[str, Any]] = field(default_factory=list)


def simulate_lot(
    plan: LotPlan,
    habits: GaveurHabits,
    rng: np.random.Generator,
    *,
    anomaly: AnomalyKind | None,
    today: date,
) -> LotRows:
    """Every row of one lot. Draw order is fixed, so a lot depends only on its own generator."""
    ducks_start = int(rng.integers(60, 121)) * 10
    initial_weight_g = round(float(rng.uniform(5200.0, 6000.0)), 1)
    lot: dict[str, Any] = {
        "id": plan.id,
        "code": plan.code,
        "site_id": plan.site_id,
        "gaveur_id": plan.gaveur_id,
        "start_date": plan.start_date,
        "duration_days": plan.duration_days,
        "ducks_start": ducks_start,
        "ducks_end": None,
        "initial_weight_g": initial_weight_g,
        "genetics": GENETICS,
        "status": plan.status.value,
        "ideal_slaughter_date": plan.ideal_slaughter_date,
        "slaughter_date": plan.slaughter_date,
        "total_maize_kg_per_duck": None,
        "final_weight_g": None,
        "mean_liver_weight_g": None,
        "itm": None,
        "mortality_pct": None,
        "mean_temperature_c": None,
    }
    rows = LotRows(lot=lot)
    if plan.status is LotStatus.PLANNED:
        return rows

    irregularity = habits.irregularity * float(rng.uniform(0.8, 1.2))
    doses = phy.dose_curve(
        rng, duration_days=plan.duration_days, style=habits.style, irregularity=irregularity
    )
    meal_dates = [
        plan.start_date + timedelta(days=meal // 2) for meal in range(2 * plan.duration_days)
    ]
    temperatures, humidity = phy.barn_climate(
        rng, meal_dates=meal_dates, lot_offset_c=float(rng.normal(0.0, 1.0))
    )
    true_weight, weights = phy.weight_curve(
        rng,
        initial_weight_g=initial_weight_g,
        doses_g=doses,
        temperatures_c=temperatures,
        efficiency=habits.efficiency * float(rng.uniform(0.98, 1.02)),
    )
    deaths = phy.meal_deaths(
        rng,
        ducks_start=ducks_start,
        temperatures_c=temperatures,
        base_rate=habits.mortality_rate * float(rng.uniform(0.8, 1.25)),
    )
    # The law is computed on the true readings: planted errors below only corrupt the records.
    total_maize_kg = round(float(doses.sum()) / 1000.0, 4)
    mean_temperature_c = round(float(temperatures.mean()), 3)

    recorded_doses, recorded_temps = doses.copy(), temperatures.copy()
    if anomaly is not None:
        rows.anomalies = _plant(
            anomaly, rng, plan, doses=recorded_doses, weights=weights,
            temperatures=recorded_temps, deaths=deaths, ducks_start=ducks_start,
        )  # fmt: skip

    n = plan.recorded_meals
    rows.records = [
        {
            "lot_id": plan.id,
            "day": meal // 2 + 1,
            "meal": MEAL_ORDER[meal % 2],
            "record_date": meal_dates[meal],
            "dose_g": dose,
            "mean_weight_g": weight,
            "temperature_c": temperature,
            "humidity_pct": hum,
            "mortality": died,
        }
        for meal, dose, weight, temperature, hum, died in zip(
            range(n),
            recorded_doses[:n].tolist(),
            weights[:n].tolist(),
            recorded_temps[:n].tolist(),
            humidity[:n].tolist(),
            deaths[:n].tolist(),
            strict=True,
        )
    ]
    if plan.status is LotStatus.FEEDING:
        return rows

    itm = phy.lot_itm(
        rng,
        total_maize_kg=total_maize_kg,
        initial_weight_g=initial_weight_g,
        mean_temperature_c=mean_temperature_c,
    )
    liver_g = round(1000.0 * total_maize_kg / itm, 1)
    dead = int(deaths.sum())
    lot.update(
        ducks_end=ducks_start - dead,
        total_maize_kg_per_duck=total_maize_kg,
        final_weight_g=round(float(true_weight[-1]), 1),
        mean_liver_weight_g=liver_g,
        itm=itm,
        mortality_pct=round(100.0 * dead / ducks_start, 3),
        mean_temperature_c=mean_temperature_c,
    )
    if plan.status is LotStatus.SLAUGHTERED and plan.slaughter_date is not None:
        grades = _sqal_samples(rows, plan, rng, liver_g, mean_temperature_c, irregularity)
        _feedback(rows, plan, rng, grades, irregularity, today)
    return rows


def _plant(
    kind: AnomalyKind,
    rng: np.random.Generator,
    plan: LotPlan,
    *,
    doses: np.ndarray,
    weights: np.ndarray,
    temperatures: np.ndarray,
    deaths: np.ndarray,
    ducks_start: int,
) -> list[dict[str, Any]]:
    """Corrupt one or two meals in place and describe what was done (the scoring truth).

    The anomalies are far outside the normal ranges (a dose x10 or 0, 45 °C, a weight below any
    starting weight, 15+ deaths in a meal) so an Isolation Forest on the raw records finds them.
    """
    meal = int(rng.integers(2, plan.recorded_meals - 1))
    meals = [meal]
    if kind is AnomalyKind.MORTALITY_SPIKE:
        expected = ducks_start * 0.00055  # a typical rate at comfortable temperature
        deaths[meal] = int(max(10 * expected, 15) + rng.poisson(5))
        detail = f"{deaths[meal]} deaths in one meal (about {expected:.1f} expected)"
    elif kind is AnomalyKind.DOSE_ENTRY_ERROR:
        true_dose = float(doses[meal])
        doses[meal] = round(true_dose * 10, 1) if rng.random() < 0.5 else 0.0
        detail = f"dose recorded as {doses[meal]:.1f} g instead of {true_dose:.1f} g"
    elif kind is AnomalyKind.WEIGHT_DROP:
        true_weight = float(weights[meal])
        weights[meal] = round(true_weight * float(rng.uniform(0.55, 0.65)), 1)
        detail = f"mean weight recorded as {weights[meal]:.0f} g instead of {true_weight:.0f} g"
    else:
        if meal + 1 < plan.recorded_meals and rng.random() < 0.5:
            meals.append(meal + 1)
        for index in meals:
            temperatures[index] = round(float(rng.uniform(44.0, 47.0)), 1)
        detail = f"temperature sensor stuck near 45 °C for {len(meals)} meal(s)"
    return [
        {
            "kind": kind.value,
            "lot_id": plan.id,
            "day": index // 2 + 1,
            "meal": MEAL_ORDER[index % 2],
            "detail": detail,
        }
        for index in meals
    ]


def _sqal_samples(
    rows: LotRows,
    plan: LotPlan,
    rng: np.random.Generator,
    liver_g: float,
    mean_temperature_c: float,
    irregularity: float,
) -> list[Grade]:
    assert plan.slaughter_date is not None
    n = int(rng.integers(8, 13))
    weights = np.round(np.clip(liver_g * rng.normal(1.0, 0.12, n), 250.0, 1300.0), 1)
    grades = phy.grade_livers(
        rng, weights, mean_temperature_c=mean_temperature_c, irregularity=irregularity
    )
    maps = phy.tof_maps(rng, weights, grades)
    device_id = f"SQAL-{plan.site_code}-{int(rng.integers(1, 3)):02d}"
    batch_id = f"B{plan.slaughter_date:%y%m%d}-{plan.code}" if rng.random() < 0.9 else None
    # Samples come off the line a few minutes apart, from early morning (UTC).
    start = datetime.combine(plan.slaughter_date, time(5, 0), tzinfo=UTC)
    minutes = float(rng.uniform(0.0, 180.0)) + np.cumsum(rng.uniform(1.5, 6.0, n))
    for k in range(n):
        rows.samples.append(
            {
                "lot_id": plan.id,
                "device_id": device_id,
                "measured_at": start + timedelta(seconds=round(float(minutes[k]) * 60.0)),
                "tof_zones_mm": maps[k].tolist(),
                "liver_weight_g": float(weights[k]),
                "grade": grades[k].value,
                "batch_id": batch_id,
            }
        )
    return grades


def _feedback(
    rows: LotRows,
    plan: LotPlan,
    rng: np.random.Generator,
    grades: list[Grade],
    irregularity: float,
    today: date,
) -> None:
    assert plan.slaughter_date is not None
    quality = phy.quality_score(grades, irregularity=irregularity)
    melting = sum(g is Grade.B for g in grades) / max(len(grades), 1)
    for _ in range(int(rng.integers(2, 5))):
        delay = int(rng.integers(*FEEDBACK_DELAY_DAYS))
        rating = _score(quality + rng.normal(0.0, 0.5))
        texture = _score(quality + rng.normal(0.0, 0.6) - (0.6 if melting > 0.5 else 0.0))
        taste = _score(quality + rng.normal(0.0, 0.6))
        level = "low" if rating <= 2 else "mid" if rating == 3 else "high"
        comment = COMMENTS[level][int(rng.integers(len(COMMENTS[level])))]
        has_email = rng.random() < 0.35
        email = f"consommateur{int(rng.integers(1, 100_000)):05d}@example.org"
        at = datetime.combine(
            plan.slaughter_date + timedelta(days=delay),
            time(int(rng.integers(8, 22)), int(rng.integers(0, 60))),
            tzinfo=UTC,
        )
        if at.date() >= today:  # not written yet
            continue
        rows.feedback.append(
            {
                "lot_id": plan.id,
                "created_at": at,
                "rating": rating,
                "texture": texture,
                "taste": taste,
                "comment": comment,
                "consumer_email": email if has_email else None,
            }
        )


def _score(value: float) -> int:
    return max(1, min(5, round(value)))
