"""Gaveur clustering: K-Means on per-gaveur performance, with silhouette and cluster profiles."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain.errors import InsufficientData, InvalidInput
from domain.models import Gaveur, Lot, Site

DEFAULT_K = 5
FEATURES = ("lots", "mean_itm", "mean_mortality_pct", "mean_liver_weight_g")


def gaveur_performance(session: Session) -> pd.DataFrame:
    """One row per gaveur with at least one finished lot."""
    query = (
        select(
            Gaveur.id.label("gaveur_id"),
            Gaveur.code,
            Site.code.label("site_code"),
            func.count(Lot.id).label("lots"),
            func.avg(Lot.itm).label("mean_itm"),
            func.avg(Lot.mortality_pct).label("mean_mortality_pct"),
            func.avg(Lot.mean_liver_weight_g).label("mean_liver_weight_g"),
        )
        .join(Lot, Lot.gaveur_id == Gaveur.id)
        .join(Site, Site.id == Gaveur.site_id)
        .where(Lot.itm.is_not(None))
        .group_by(Gaveur.id, Gaveur.code, Site.code)
        .order_by(Gaveur.id)
    )
    return pd.DataFrame(session.execute(query).mappings().all())


def cluster(frame: pd.DataFrame, *, k: int = DEFAULT_K, seed: int = 0) -> dict[str, Any]:
    if k < 2:
        raise InvalidInput(f"k={k}: clustering needs at least 2 clusters")
    if len(frame) < 2 * k:
        raise InsufficientData(
            f"{len(frame)} gaveurs with finished lots; at least {2 * k} are needed for k={k}"
        )
    values = frame[list(FEATURES)].astype(float).to_numpy()
    scaler = StandardScaler().fit(values)
    scaled = scaler.transform(values)
    model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(scaled)
    labels = model.labels_
    profiles = []
    for label in range(k):
        members = frame[labels == label]
        profiles.append(
            {
                "cluster": label,
                "size": len(members),
                **{f: round(float(members[f].astype(float).mean()), 3) for f in FEATURES},
                "gaveurs": members["code"].tolist(),
            }
        )
    # Rank clusters best first: lowest ITM (less maize per kg of liver) is the better hand.
    profiles.sort(key=lambda p: p["mean_itm"])
    for rank, profile in enumerate(profiles, start=1):
        profile["rank"] = rank
    return {
        "k": k,
        "gaveurs": len(frame),
        "silhouette": round(float(silhouette_score(scaled, labels)), 4),
        "inertia": round(float(model.inertia_), 3),
        "clusters": profiles,
        "assignments": dict(zip(frame["code"], (int(x) for x in labels), strict=True)),
        "artefact": {"scaler": scaler, "kmeans": model, "features": FEATURES},
        "_centres": np.asarray(model.cluster_centers_),
    }
