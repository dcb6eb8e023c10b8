"""Excel workbooks with xlsxwriter: one sheet per topic, native Excel charts, number formats,
frozen header rows and autofilters.

Workbooks are written in `constant_memory` mode (each row goes to disk once written), so every
sheet is filled top to bottom; the long tables (meals, samples, feedback) stream from the same
queries as the CSV exports.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import IO, Any

import xlsxwriter
from sqlalchemy.orm import Session
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from domain.reports import csv_export
from domain.reports.data import LotReport, SiteReport
from domain.reports.fmt import KPI_LABELS, STATUS_FR

#: Column formats by kind: xlsxwriter format properties.
FORMATS: dict[str, dict[str, Any]] = {
    "header": {"bold": True, "bg_color": "#E4ECF3", "border": 1, "text_wrap": True},
    "title": {"bold": True, "font_size": 14},
    "label": {"bold": True},
    "int": {"num_format": "#,##0"},
    "dec1": {"num_format": "#,##0.0"},
    "dec2": {"num_format": "#,##0.00"},
    "date": {"num_format": "dd/mm/yyyy"},
    "datetime": {"num_format": "dd/mm/yyyy hh:mm"},
    "text": {},
}


class _Book:
    """A workbook and its named formats."""

    def __init__(self, out: IO[bytes]) -> None:
        self.workbook: Workbook = xlsxwriter.Workbook(
            out, {"constant_memory": True, "remove_timezone": True}
        )
        self.formats = {name: self.workbook.add_format(props) for name, props in FORMATS.items()}

    def table(
        self,
        name: str,
        columns: Sequence[tuple[str, str, int]],
        rows: Iterable[Sequence[Any]],
    ) -> tuple[Worksheet, int]:
        """A sheet holding one table: header (frozen, filtered) and rows; (sheet, row count).

        `columns` are (header, format kind, width).
        """
        sheet = self.workbook.add_worksheet(name)
        for index, (_, kind, width) in enumerate(columns):
            sheet.set_column(index, index, width, self.formats[kind])
        sheet.write_row(0, 0, [header for header, _, _ in columns], self.formats["header"])
        count = 0
        for count, row in enumerate(rows, start=1):
            for index, value in enumerate(row):
                sheet.write(count, index, value, self.formats[columns[index][1]])
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, max(count, 1), len(columns) - 1)
        return sheet, count

    def facts(self, name: str, title: str, pairs: Sequence[tuple[str, Any, str]]) -> Worksheet:
        """A sheet of label/value pairs under a title; pairs are (label, value, format kind)."""
        sheet = self.workbook.add_worksheet(name)
        sheet.set_column(0, 0, 34)
        sheet.set_column(1, 1, 28)
        sheet.write(0, 0, title, self.formats["title"])
        for row, (label, value, kind) in enumerate(pairs, start=2):
            sheet.write(row, 0, label, self.formats["label"])
            sheet.write(row, 1, value if value is not None else "", self.formats[kind])
        return sheet

    def chart(
        self,
        sheet: Worksheet,
        kind: str,
        title: str,
        *,
        source: str,
        rows: int,
        categories: int,
        series: Sequence[tuple[int, bool]],
        anchor: str,
    ) -> None:
        """A native chart of `source` rows 1..rows: x from column `categories`, one series per
        (column, on secondary axis)."""
        chart = self.workbook.add_chart({"type": kind})
        for column, secondary in series:
            chart.add_series(
                {
                    "name": [source, 0, column],
                    "categories": [source, 1, categories, max(rows, 1), categories],
                    "values": [source, 1, column, max(rows, 1), column],
                    "y2_axis": secondary,
                }
            )
        chart.set_title({"name": title})
        chart.set_size({"width": 720, "height": 320})
        chart.set_legend({"position": "bottom"})
        sheet.insert_chart(anchor, chart)

    def close(self) -> None:
        self.workbook.close()


def lot_workbook(session: Session, report: LotReport, out: IO[bytes]) -> dict[str, int]:
    """Sheets Lot, Jours (+ dose/weight chart), Repas, SQAL (+ grades chart), Carte ToF, Avis."""
    lot, site, gaveur, itm = report.lot, report.site, report.gaveur, report.itm
    book = _Book(out)
    book.facts(
        "Lot",
        f"Lot {lot.code} (n° {lot.id})",
        [
            ("Site", f"{site.code} – {site.name}", "text"),
            ("Gaveur", f"{gaveur.first_name} {gaveur.last_name} ({gaveur.code})", "text"),
            ("Téléphone du gaveur", gaveur.phone, "text"),
            ("Génétique", lot.genetics, "text"),
            ("Statut", STATUS_FR.get(lot.status, lot.status), "text"),
            ("Début du gavage", lot.start_date, "date"),
            ("Durée (jours)", lot.duration_days, "int"),
            ("Abattage", lot.slaughter_date, "date"),
            ("Canards au début", lot.ducks_start, "int"),
            ("Canards à la fin", lot.ducks_end, "int"),
            ("Poids initial (g)", lot.initial_weight_g, "dec1"),
            ("Poids final (g)", lot.final_weight_g, "dec1"),
            ("Maïs total (kg/canard)", lot.total_maize_kg_per_duck, "dec2"),
            ("Foie moyen (g)", lot.mean_liver_weight_g, "dec1"),
            ("Mortalité (%)", lot.mortality_pct, "dec2"),
            ("ITM", itm.lot, "dec2"),
            ("ITM moyen du site", itm.site_mean, "dec2"),
            ("Rang ITM sur le site", itm.rank, "int"),
            ("Lots finis du site", itm.site_lots, "int"),
            ("ITM moyen de la coopérative", itm.cooperative_mean, "dec2"),
        ],
    )
    days, n_days = book.table(
        "Jours",
        [("Jour", "int", 8), ("Date", "date", 12), ("Dose (g/canard)", "dec1", 14),
         ("Poids soir (g)", "dec1", 14), ("Morts", "int", 8), ("Température (°C)", "dec1", 14)],
        ((d.day, d.record_date, d.dose_g, d.weight_g, d.deaths, d.temperature_c)
         for d in report.days),
    )  # fmt: skip
    book.chart(
        days, "line", "Dose et poids par jour", source="Jours", rows=n_days, categories=0,
        series=[(2, False), (3, True)], anchor="H2",
    )  # fmt: skip
    meals = csv_export.gavage(lot_ids=[lot.id], text_dates=False)
    _, n_meals = book.table(
        "Repas",
        [(name, kind, 13) for name, kind in zip(meals.columns, _GAVAGE_KINDS, strict=True)],
        (row for chunk in meals.chunks(session) for row in chunk),
    )
    samples, n_samples = book.table(
        "SQAL",
        [("Grade", "text", 8), ("Foies", "int", 8), ("", "text", 4), ("Mesuré le", "datetime", 17),
         ("Station", "text", 14), ("Poids du foie (g)", "dec1", 16), ("Grade du foie", "text", 12)],
        _grades_beside_samples(session, report),
    )  # fmt: skip
    book.chart(
        samples, "column", "Répartition des grades", source="SQAL", rows=len(report.grades),
        categories=0, series=[(1, False)], anchor="I2",
    )  # fmt: skip
    tof = book.workbook.add_worksheet("Carte ToF")
    grid = report.tof_mean_mm or []
    tof.write(0, 0, "Carte ToF moyenne (distance capteur, mm)", book.formats["title"])
    for r, row in enumerate(grid, start=2):
        tof.write_row(r, 0, row, book.formats["dec1"])
    if grid:
        tof.conditional_format(
            2, 0, len(grid) + 1, len(grid[0]) - 1,
            {"type": "3_color_scale", "min_color": "#B2182B", "mid_color": "#F4A582",
             "max_color": "#F7F7F7"},
        )  # fmt: skip
    feedback = csv_export.feedbacks(lot_ids=[lot.id])
    _, n_feedback = book.table(
        "Avis",
        [("Date", "datetime", 17), ("Note", "int", 7), ("Texture", "int", 8), ("Goût", "int", 7),
         ("Commentaire", "text", 70)],
        ((row.created_at, row.rating, row.texture, row.taste, row.comment)
         for row in session.execute(feedback.query)),
    )  # fmt: skip
    book.close()
    return {"days": n_days, "meals": n_meals, "samples": n_samples, "feedback": n_feedback}


_GAVAGE_KINDS = (
    "int", "text", "text", "text", "int", "text", "date", "dec1", "dec1", "dec1", "dec1", "int",
)  # fmt: skip


def _grades_beside_samples(session: Session, report: LotReport) -> Iterable[Sequence[Any]]:
    """Rows of the SQAL sheet: the grade counts (columns A-B, the chart's source) beside the
    samples (columns D-G), so the sheet is still written top to bottom."""
    counts = list(report.grades.items())
    samples = session.execute(csv_export.sqal(lot_ids=[report.lot.id]).query).all()
    for index in range(max(len(counts), len(samples))):
        left = list(counts[index]) if index < len(counts) else ["", ""]
        right = (
            [samples[index].measured_at, samples[index].device_id,
             samples[index].liver_weight_g, samples[index].grade]
            if index < len(samples) else ["", "", "", ""]
        )  # fmt: skip
        yield [*left, "", *right]


def site_workbook(report: SiteReport, out: IO[bytes]) -> dict[str, int]:
    """Sheets Site, Lots, Tendances (+ chart), Gaveurs (+ ITM chart), SQAL (+ grades chart)."""
    site, book = report.site, _Book(out)
    book.facts(
        "Site",
        f"Site {site.code} – {site.name}, du {report.date_debut:%d/%m/%Y} au "
        f"{report.date_fin:%d/%m/%Y}",
        [("Responsable", f"{site.manager_name}, {site.manager_phone}", "text")]
        + [(label, report.kpis.get(key), "int" if digits == 0 else f"dec{min(digits, 2)}")
           for key, (label, digits) in KPI_LABELS.items()],
    )  # fmt: skip
    book.table(
        "Lots",
        [("Lot", "text", 12), ("Gaveur", "text", 22), ("Début", "date", 12), ("Jours", "int", 7),
         ("Statut", "text", 11), ("Canards", "int", 9), ("Canards fin", "int", 10),
         ("ITM", "dec2", 8), ("Mortalité (%)", "dec2", 12), ("Foie (g)", "dec1", 10)],
        ((lot.code, lot.gaveur_name, lot.start_date, lot.duration_days,
          STATUS_FR.get(lot.status, lot.status), lot.ducks_start, lot.ducks_end, lot.itm,
          lot.mortality_pct, lot.mean_liver_weight_g) for lot in report.lots),
    )  # fmt: skip
    trend, n_trend = book.table(
        "Tendances",
        [("Date", "date", 12), ("Dose moyenne (g)", "dec1", 16), ("Poids moyen (g)", "dec1", 16),
         ("Morts", "int", 8)],
        ((p.day, p.mean_dose_g, p.mean_weight_g, p.deaths) for p in report.trend),
    )  # fmt: skip
    book.chart(
        trend, "line", "Dose et poids moyens par jour", source="Tendances", rows=n_trend,
        categories=0, series=[(1, False), (2, True)], anchor="G2",
    )  # fmt: skip
    gaveurs, n_gaveurs = book.table(
        "Gaveurs",
        [("Rang", "int", 6), ("Code", "text", 10), ("Gaveur", "text", 22),
         ("Téléphone", "text", 15), ("Lots", "int", 6), ("ITM moyen", "dec2", 10),
         ("Mortalité (%)", "dec2", 12)],
        ((g.rank, g.code, g.name, g.phone, g.lots, g.mean_itm, g.mortality_pct)
         for g in report.ranking),
    )  # fmt: skip
    book.chart(
        gaveurs, "column", "ITM moyen par gaveur", source="Gaveurs", rows=n_gaveurs,
        categories=1, series=[(5, False)], anchor="I2",
    )  # fmt: skip
    grades, n_grades = book.table(
        "SQAL", [("Grade", "text", 8), ("Foies", "int", 8)], list(report.grades.items())
    )
    book.chart(
        grades, "column", "Grades SQAL de la période", source="SQAL", rows=n_grades,
        categories=0, series=[(1, False)], anchor="D2",
    )  # fmt: skip
    book.close()
    return {"lots": len(report.lots), "days": n_trend, "gaveurs": n_gaveurs}
