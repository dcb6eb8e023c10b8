"""How figures and dates are written in the reports (French): one place, so a reader of a
PDF, or a test, finds a database value by formatting it the same way."""

from __future__ import annotations

from datetime import date

STATUS_FR = {
    "planned": "planifié",
    "feeding": "en gavage",
    "finished": "terminé",
    "slaughtered": "abattu",
}

#: The site report's indicators: key in SiteReport.kpis -> (label, decimals).
KPI_LABELS = {
    "lots": ("Lots en gavage sur la période", 0),
    "lots_finished": ("Lots finis (ITM mesuré)", 0),
    "ducks": ("Canards mis en gavage", 0),
    "deaths_in_period": ("Morts sur la période", 0),
    "mortality_pct": ("Mortalité des lots finis (%)", 2),
    "mean_itm": ("ITM moyen", 2),
    "mean_liver_weight_g": ("Foie moyen (g)", 1),
    "mean_dose_g": ("Dose moyenne par repas (g)", 1),
    "sqal_samples": ("Foies mesurés SQAL", 0),
    "grade_a_share_pct": ("Part A+ et A (%)", 1),
    "mean_rating": ("Note consommateurs (/5)", 2),
}


def num(value: float | None, digits: int = 1) -> str:
    """Decimal comma, a space between thousands, `digits` decimals; None is a dash."""
    if value is None:
        return "–"
    return f"{value:,.{digits}f}".replace(",", " ").replace(".", ",")


def day_fr(value: date | None) -> str:
    return value.strftime("%d/%m/%Y") if value else "–"
