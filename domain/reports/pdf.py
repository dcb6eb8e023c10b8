"""PDF documents with reportlab platypus: the lot report and the site report, in French.

Figures are written by domain/reports/fmt.py (`17,83`, `1 240`). Every page carries a footer
saying the document holds personal data (gaveur names and phone numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import IO, Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.doctemplate import BaseDocTemplate

from domain.reports import charts
from domain.reports.data import LotReport, SiteReport
from domain.reports.fmt import KPI_LABELS, STATUS_FR, day_fr, num

_STYLES = getSampleStyleSheet()
TITLE = ParagraphStyle("title", parent=_STYLES["Title"], fontSize=18, spaceAfter=4)
H2 = ParagraphStyle("h2", parent=_STYLES["Heading2"], fontSize=12, spaceBefore=10, spaceAfter=4)
BODY = ParagraphStyle("body", parent=_STYLES["BodyText"], fontSize=9, leading=12)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=7, leading=9)
HEADER_BG = colors.HexColor("#e4ecf3")
GRID = colors.HexColor("#9aa9b5")


def table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], *, widths: Sequence[float] | None = None
) -> Table:
    """A data table whose header repeats on every page it spans."""
    data = [list(header)] + [[str(cell) for cell in row] for row in rows]
    result = Table(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    result.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), "Helvetica", 7.5),
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 7.5),
                ("BACKGROUND", (0, 0), (-1, 0), HEADER_BG),
                ("GRID", (0, 0), (-1, -1), 0.25, GRID),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f6f8fa")]),
            ]
        )
    )
    return result


def facts(pairs: Sequence[tuple[str, str]], *, label_cm: float = 3.6) -> Table:
    """Label/value pairs, two pairs per row, across the page's 17.2 cm."""
    cells = [[label, value] for label, value in pairs]
    if len(cells) % 2:
        cells.append(["", ""])
    rows = [cells[i] + cells[i + 1] for i in range(0, len(cells), 2)]
    value_cm = 8.6 - label_cm
    result = Table(rows, colWidths=[label_cm * cm, value_cm * cm] * 2, hAlign="LEFT")
    result.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), "Helvetica", 8.5),
                ("FONT", (0, 0), (0, -1), "Helvetica-Bold", 8.5),
                ("FONT", (2, 0), (2, -1), "Helvetica-Bold", 8.5),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, GRID),
            ]
        )
    )
    return result


def build(out: IO[bytes], story: list[Flowable], *, title: str, generated_at: datetime) -> None:
    stamp = generated_at.strftime("%d/%m/%Y %H:%M UTC")

    def footer(canvas: Any, doc: BaseDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(
            doc.leftMargin,
            1.0 * cm,
            f"Coopérative des Gaveurs – {title} – généré le {stamp} – "
            "confidentiel : contient des données personnelles",
        )
        canvas.drawRightString(A4[0] - doc.rightMargin, 1.0 * cm, f"page {doc.page}")
        canvas.restoreState()

    document = SimpleDocTemplate(
        out,
        pagesize=A4,
        title=title,
        author="Coopérative des Gaveurs",
        leftMargin=1.6 * cm,
        rightMargin=1.6 * cm,
        topMargin=1.5 * cm,
        bottomMargin=1.8 * cm,
    )
    document.build(story, onFirstPage=footer, onLaterPages=footer)


def _grades_chart(title: str, grades: dict[str, int]) -> Flowable:
    return charts.bar_chart(
        title, list(grades), list(grades.values()), y_label="foies", counts=True
    )


def _lot_identity(report: LotReport) -> Table:
    lot, site, gaveur = report.lot, report.site, report.gaveur
    return facts(
        [
            ("Lot", f"{lot.code} (n° {lot.id})"),
            ("Site", f"{site.code} – {site.name}"),
            ("Gaveur", f"{gaveur.first_name} {gaveur.last_name} ({gaveur.code})"),
            ("Téléphone", gaveur.phone),
            ("Génétique", lot.genetics),
            ("Statut", STATUS_FR.get(lot.status, lot.status)),
            ("Début du gavage", day_fr(lot.start_date)),
            ("Durée", f"{lot.duration_days} jours"),
            ("Abattage", day_fr(lot.slaughter_date)),
            ("Canards début / fin", f"{lot.ducks_start} / {lot.ducks_end or '–'}"),
            ("Poids initial", f"{num(lot.initial_weight_g)} g"),
            ("Poids final", f"{num(lot.final_weight_g)} g"),
            ("Maïs total", f"{num(lot.total_maize_kg_per_duck, 2)} kg/canard"),
            ("Foie moyen", f"{num(lot.mean_liver_weight_g)} g"),
            ("ITM", num(lot.itm, 2)),
            ("Mortalité", f"{num(lot.mortality_pct, 2)} %"),
        ]
    )


def _lot_curves(report: LotReport) -> list[Flowable]:
    days = report.days
    return [
        charts.line_chart(
            "Dose journalière de maïs (matin + soir)",
            [("dose", [(d.day, d.dose_g) for d in days])],
            y_label="g / canard",
            x_format=lambda x: f"J{int(x)}",
        ),
        charts.line_chart(
            "Poids moyen (repas du soir)",
            [("poids", [(d.day, d.weight_g) for d in days])],
            y_label="g",
            x_format=lambda x: f"J{int(x)}",
        ),
        charts.bar_chart(
            "Mortalité par jour",
            [f"J{d.day}" for d in days],
            [d.deaths for d in days],
            y_label="canards morts",
            counts=True,
        ),
    ]


def lot_story(report: LotReport, *, complete: bool) -> list[Flowable]:
    lot, itm = report.lot, report.itm
    kind = "complet" if complete else "synthèse"
    story: list[Flowable] = [
        Paragraph(f"Rapport de lot {lot.code}", TITLE),
        Paragraph(f"Lot n° {lot.id} – rapport {kind}", BODY),
        Spacer(1, 6),
        _lot_identity(report),
        Paragraph("Courbes de gavage", H2),
        *_lot_curves(report),
        Paragraph("Mortalité", H2),
        Paragraph(
            f"{report.deaths} canards morts pendant le gavage sur {lot.ducks_start} "
            f"({num(100 * report.deaths / lot.ducks_start if lot.ducks_start else None, 2)} %).",
            BODY,
        ),
        Paragraph("ITM comparé au site", H2),
        table(
            [
                "ITM du lot",
                "Moyenne du site",
                "Lots finis du site",
                "Rang sur le site",
                "Moyenne coopérative",
            ],
            [
                [
                    num(itm.lot, 2),
                    num(itm.site_mean, 2),
                    itm.site_lots,
                    f"{itm.rank} / {itm.site_lots}" if itm.rank else "–",
                    num(itm.cooperative_mean, 2),
                ]
            ],
        ),
        Paragraph("Qualité SQAL", H2),
    ]
    samples = sum(report.grades.values())
    weights = report.sample_weights_g
    mean_weight = sum(weights) / len(weights) if weights else None
    story.append(
        Paragraph(
            f"{samples} foies mesurés, poids moyen {num(mean_weight)} g.",
            BODY,
        )
    )
    story.append(_grades_chart("Répartition des grades", report.grades))
    if complete and report.tof_mean_mm:
        story.append(
            KeepTogether(
                [charts.heat_map("Carte ToF moyenne (distance capteur, mm)", report.tof_mean_mm)]
            )
        )
    story.append(Paragraph("Avis consommateurs", H2))
    r = report.ratings
    story.append(
        Paragraph(
            f"{report.feedback_count} avis – note {num(r['rating'], 2)} / 5, texture "
            f"{num(r['texture'], 2)}, goût {num(r['taste'], 2)}.",
            BODY,
        )
    )
    if complete:
        if report.comments:
            story.append(
                table(
                    ["Date", "Note", "Commentaire"],
                    [[day_fr(c.created_at.date()), c.rating, c.comment] for c in report.comments],
                    widths=[2.2 * cm, 1.2 * cm, 14 * cm],
                )
            )
        story.append(Paragraph("Relevés journaliers", H2))
        story.append(
            table(
                ["Jour", "Date", "Dose (g)", "Poids soir (g)", "Morts", "Température (°C)"],
                [
                    [
                        d.day,
                        day_fr(d.record_date),
                        num(d.dose_g),
                        num(d.weight_g),
                        d.deaths,
                        num(d.temperature_c),
                    ]
                    for d in report.days
                ],
            )
        )
    return story


def site_story(report: SiteReport) -> list[Flowable]:
    site = report.site
    period = f"du {day_fr(report.date_debut)} au {day_fr(report.date_fin)}"
    origin = report.date_debut.toordinal()

    def as_day(x: float) -> str:
        return date.fromordinal(origin + int(x)).strftime("%d/%m")

    def trend(attribute: str) -> list[tuple[float, float]]:
        return [(p.day.toordinal() - origin, getattr(p, attribute)) for p in report.trend]

    story: list[Flowable] = [
        Paragraph(f"Rapport de site {site.code} – {site.name}", TITLE),
        Paragraph(
            f"Période {period} – responsable {site.manager_name}, {site.manager_phone}", BODY
        ),
        Paragraph("Indicateurs", H2),
        facts(
            [
                (label, num(report.kpis.get(key), digits))
                for key, (label, digits) in KPI_LABELS.items()
            ],
            label_cm=5.6,
        ),
        Paragraph("Tendances", H2),
        charts.line_chart(
            "Dose moyenne par repas",
            [("dose", trend("mean_dose_g"))],
            y_label="g / canard",
            x_format=as_day,
        ),
        charts.line_chart(
            "Poids moyen", [("poids", trend("mean_weight_g"))], y_label="g", x_format=as_day
        ),
        _grades_chart("Grades SQAL de la période", report.grades),
        Paragraph("Classement des gaveurs (ITM moyen, le plus bas d'abord)", H2),
        table(
            ["Rang", "Code", "Gaveur", "Téléphone", "Lots", "ITM moyen", "Mortalité (%)"],
            [
                [
                    g.rank,
                    g.code,
                    g.name,
                    g.phone,
                    g.lots,
                    num(g.mean_itm, 2),
                    num(g.mortality_pct, 2),
                ]
                for g in report.ranking
            ],
        ),
    ]
    ranked = [g for g in report.ranking if g.mean_itm is not None]
    if ranked:
        story.append(
            charts.bar_chart(
                "ITM moyen par gaveur",
                [g.code for g in ranked],
                [g.mean_itm or 0.0 for g in ranked],
                y_label="ITM",
            )
        )
    story.append(Paragraph(f"Lots ({len(report.lots)})", H2))
    story.append(
        table(
            [
                "Lot",
                "Gaveur",
                "Début",
                "Jours",
                "Statut",
                "Canards",
                "ITM",
                "Mortalité (%)",
                "Foie (g)",
            ],
            [
                [
                    lot.code,
                    lot.gaveur_name,
                    day_fr(lot.start_date),
                    lot.duration_days,
                    STATUS_FR.get(lot.status, lot.status),
                    lot.ducks_start,
                    num(lot.itm, 2),
                    num(lot.mortality_pct, 2),
                    num(lot.mean_liver_weight_g),
                ]
                for lot in report.lots
            ],
        )
    )
    return story
