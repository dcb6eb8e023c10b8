"""What each kind of notification says and to whom: database lookups and French templates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from html import unescape
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain.errors import InvalidInput, NotFound
from domain.models import ConsumerFeedback, FeedingRecord, Gaveur, Lot, LotStatus, Site
from domain.notify.channels import Email, Sms

TEMPLATES = Path(__file__).with_name("templates")
TAGS = re.compile(r"<[^>]+>")
BLANKS = re.compile(r"\n\s*\n+")


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def html_to_text(html: str) -> str:
    """The plain-text part: tags dropped, entities decoded, blank runs collapsed."""
    text = re.sub(r"<(br|/p|/h\d|/li|/tr)\s*/?>", "\n", html, flags=re.I)
    text = re.sub(r"<li[^>]*>", "- ", text, flags=re.I)
    text = unescape(TAGS.sub("", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return BLANKS.sub("\n\n", "\n".join(lines)).strip() + "\n"


def render_email(template: str, *, to: str, subject: str, **context: Any) -> Email:
    html = _env().get_template(f"{template}.html").render(subject=subject, **context)
    return Email(to=to, subject=subject, html=html, text=html_to_text(html))


def render_sms(template: str, *, to: str, **context: Any) -> Sms:
    body = _env().get_template(f"{template}.sms").render(**context).strip()
    return Sms(to=to, body=body)


@dataclass(frozen=True)
class Recipient:
    name: str
    email: str
    phone: str


def site_by_code(session: Session, code: str) -> Site:
    site = session.scalars(select(Site).where(Site.code == code)).first()
    if site is None:
        raise NotFound(f"site {code!r} does not exist")
    return site


def site_recipients(session: Session, site: Site) -> list[Recipient]:
    """The site's active gaveurs and its manager, each once."""
    people = [Recipient(site.manager_name, site.manager_email, site.manager_phone)]
    gaveurs = session.scalars(
        select(Gaveur).where(Gaveur.site_id == site.id, Gaveur.active).order_by(Gaveur.id)
    )
    people += [Recipient(f"{g.first_name} {g.last_name}", g.email, g.phone) for g in gaveurs]
    seen: set[str] = set()
    unique = []
    for person in people:
        if person.email not in seen:
            seen.add(person.email)
            unique.append(person)
    return unique


def anomaly_alert(
    session: Session, *, site_code: str, severity: str, title: str, anomalies: list[dict[str, Any]]
) -> tuple[list[Email], list[Sms]]:
    """E-mails to everyone on the site; SMS too when critical (numbers are not normalised here)."""
    site = site_by_code(session, site_code)
    people = site_recipients(session, site)
    subject = f"{'[CRITIQUE] ' if severity == 'critical' else ''}{site.code} : {title}"[:200]
    context = {"site": site, "severity": severity, "title": title, "anomalies": anomalies}
    emails = [render_email("anomaly_alert", to=p.email, subject=subject, **context) for p in people]
    sms = (
        [render_sms("anomaly_alert", to=p.phone, **context) for p in people]
        if severity == "critical"
        else []
    )
    return emails, sms


def lot_completion(session: Session, lot_id: int) -> list[Email]:
    lot = session.get(Lot, lot_id)
    if lot is None:
        raise NotFound(f"lot {lot_id} does not exist")
    if lot.status not in (LotStatus.FINISHED.value, LotStatus.SLAUGHTERED.value):
        raise InvalidInput(f"lot {lot_id} is {lot.status}, not finished")
    site = session.get_one(Site, lot.site_id)
    gaveur = session.get_one(Gaveur, lot.gaveur_id)
    subject = f"Lot {lot.code} terminé"
    people = [
        (f"{gaveur.first_name} {gaveur.last_name}", gaveur.email),
        (site.manager_name, site.manager_email),
    ]
    # The gaveur may also be the manager: one e-mail per address.
    unique = {email: name for name, email in reversed(people)}
    return [
        render_email("lot_completion", to=email, subject=subject, name=name, lot=lot, site=site)
        for email, name in unique.items()
    ]


def daily_figures(session: Session, site: Site, day: date) -> dict[str, Any]:
    lots = select(Lot.id).where(Lot.site_id == site.id)
    feedings, maize = session.execute(
        select(
            func.count(FeedingRecord.id), func.coalesce(func.sum(FeedingRecord.dose_g), 0.0)
        ).where(FeedingRecord.lot_id.in_(lots), FeedingRecord.record_date == day)
    ).one()
    lots_feeding = session.scalar(
        select(func.count(Lot.id)).where(
            Lot.site_id == site.id, Lot.status == LotStatus.FEEDING.value
        )
    )
    finished = session.scalars(
        select(Lot).where(Lot.site_id == site.id, Lot.status != LotStatus.PLANNED.value)
    )
    lots_finished = sum(
        1 for lot in finished if lot.start_date + timedelta(days=lot.duration_days - 1) == day
    )
    feedbacks = session.scalar(
        select(func.count(ConsumerFeedback.id)).where(
            ConsumerFeedback.lot_id.in_(lots),
            func.date(ConsumerFeedback.created_at) == day.isoformat(),
        )
    )
    return {
        "lots_feeding": int(lots_feeding or 0),
        "lots_finished": lots_finished,
        "feedings": int(feedings),
        # dose_g is per duck and meal; the figure is what was distributed to an average duck.
        "maize_kg": float(maize) / 1000,
        "feedbacks": int(feedbacks or 0),
    }


def daily_summaries(session: Session, day: date) -> list[Email]:
    """One e-mail per site manager with that day's figures."""
    sites = session.scalars(select(Site).order_by(Site.code))
    return [
        render_email(
            "daily_summary",
            to=site.manager_email,
            subject=f"Résumé du {day.strftime('%d/%m/%Y')} — {site.name}",
            site=site,
            day=day,
            figures=daily_figures(session, site, day),
        )
        for site in sites
    ]


def feedback_ack(session: Session, feedback_id: int) -> Email:
    feedback = session.get(ConsumerFeedback, feedback_id)
    if feedback is None:
        raise NotFound(f"feedback {feedback_id} does not exist")
    if not feedback.consumer_email:
        raise InvalidInput(f"feedback {feedback_id} has no consumer e-mail to thank")
    lot = session.get_one(Lot, feedback.lot_id)
    return render_email(
        "feedback_ack",
        to=feedback.consumer_email,
        subject="Merci pour votre avis",
        feedback=feedback,
        lot=lot,
    )


def plain_email(*, to: str, subject: str, body_html: str) -> Email:
    return render_email("email", to=to, subject=subject, body_html=body_html)


def as_email(*, to: str, subject: str, html: str) -> Email:
    """An already rendered document (from a fan-out job) with its text part."""
    return Email(to=to, subject=subject, html=html, text=html_to_text(html))


def weekly_reports(
    *,
    to: str,
    week_start: date,
    reports: list[dict[str, Any]],
    failed: list[dict[str, Any]],
) -> Email:
    """The one e-mail that ends the weekly reports: each site's PDF link, and those that failed."""
    week_end = week_start + timedelta(days=6)
    return render_email(
        "weekly_reports",
        to=to,
        subject=f"Rapports hebdomadaires du {week_start.strftime('%d/%m/%Y')}",
        week_start=week_start,
        week_end=week_end,
        reports=reports,
        failed=failed,
    )
