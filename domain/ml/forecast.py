"""Production forecast: Prophet on a site's daily liver output (kg), with uncertainty intervals.

Daily output is the liver mass of the lots slaughtered that day: ducks at the end times the
mean liver weight. Days without slaughter count as zero inside the observed span.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.errors import InsufficientData, InvalidInput
from domain.ml.data import HORIZONS
from domain.models import Lot

MIN_DAYS = 60


def daily_output(session: Session, site_id: int) -> pd.DataFrame:
    query = select(Lot.slaughter_date, Lot.ducks_end, Lot.mean_liver_weight_g).where(
        Lot.site_id == site_id,
        Lot.slaughter_date.is_not(None),
        Lot.mean_liver_weight_g.is_not(None),
        Lot.ducks_end.is_not(None),
    )
    rows = pd.DataFrame(session.execute(query).all(), columns=["ds", "ducks", "liver_g"])
    if rows.empty:
        raise InsufficientData("no slaughtered lot on this site: nothing to forecast from")
    rows["y"] = rows.ducks * rows.liver_g / 1000.0
    per_day = rows.groupby("ds")["y"].sum()
    span = pd.date_range(min(per_day.index), max(per_day.index), freq="D")
    per_day.index = pd.to_datetime(per_day.index)
    series = per_day.reindex(span, fill_value=0.0)
    if len(series) < MIN_DAYS:
        raise InsufficientData(
            f"{len(series)} days of slaughter history on this site; at least {MIN_DAYS} needed"
        )
    return pd.DataFrame({"ds": series.index, "y": series.to_numpy()})


def fit_forecast(history: pd.DataFrame, *, horizon_days: int, seed: int = 0) -> dict[str, Any]:
    """Fit Prophet (weekly and yearly seasonality) and forecast `horizon_days` after history."""
    if horizon_days not in HORIZONS:
        raise InvalidInput(f"horizon_days={horizon_days}: use one of {HORIZONS}")
    from prophet import Prophet

    # cmdstanpy logs every optimisation at INFO; the job's progress says enough.
    logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
    model = Prophet(
        interval_width=0.8,
        weekly_seasonality=True,
        yearly_seasonality=len(history) >= 365,
        daily_seasonality=False,
    )
    model.fit(history, algorithm="LBFGS")
    future = model.make_future_dataframe(periods=horizon_days, include_history=False)
    predicted = model.predict(future)
    points = [
        {
            "date": row.ds.date().isoformat(),
            "yhat": round(max(float(row.yhat), 0.0), 2),
            "yhat_lower": round(max(float(row.yhat_lower), 0.0), 2),
            "yhat_upper": round(max(float(row.yhat_upper), 0.0), 2),
        }
        for row in predicted.itertuples()
    ]
    return {"model": model, "forecast": points, "interval_width": 0.8}


def coverage(forecast: list[dict[str, Any]], actual: pd.DataFrame) -> float:
    """Share of held-out days whose actual output falls inside the forecast interval."""
    by_day = {date.fromisoformat(p["date"]): p for p in forecast}
    inside = total = 0
    for row in actual.itertuples():
        point = by_day.get(row.ds.date())
        if point is not None:
            total += 1
            inside += point["yhat_lower"] <= row.y <= point["yhat_upper"]
    return inside / total if total else 0.0
