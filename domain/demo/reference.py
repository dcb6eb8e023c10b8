"""Fixed reference data of the demo cooperative: sites, French names, comments, holidays.

Everything here is fictitious: people are drawn from common French names, e-mails use the
reserved example.org domain and phone numbers are random mobile numbers.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class SiteSpec:
    code: str
    name: str
    region: str
    manager_name: str
    manager_email: str
    manager_phone: str
    slaughter_capacity: int  # ducks per ordinary weekday


SITES = (
    SiteSpec(
        "LL", "Site de Laluque", "Landes (Nouvelle-Aquitaine)",
        "Hélène Lartigue", "helene.lartigue@example.org", "+33612480135", 3600,
    ),
    SiteSpec(
        "LS", "Site de La Sauvetat", "Gers (Occitanie)",
        "Jean-Marc Dupouy", "jean-marc.dupouy@example.org", "+33627391548", 2800,
    ),
    SiteSpec(
        "MT", "Site de Maubourguet", "Hautes-Pyrénées (Occitanie)",
        "Sylvie Castagnet", "sylvie.castagnet@example.org", "+33645120963", 2200,
    ),
)  # fmt: skip

FIRST_NAMES = (
    "Jean", "Pierre", "Michel", "André", "Philippe", "Alain", "Bernard", "Christian", "Daniel",
    "Patrick", "Jacques", "Serge", "Laurent", "Thierry", "Éric", "Julien", "Nicolas", "Mathieu",
    "Bastien", "Romain", "Marie", "Nathalie", "Isabelle", "Sylvie", "Catherine", "Françoise",
    "Christine", "Sandrine", "Céline", "Aurélie", "Laëtitia", "Émilie", "Pauline", "Camille",
)  # fmt: skip

LAST_NAMES = (
    "Dubos", "Lafitte", "Labadie", "Darrieutort", "Lacoste", "Lalanne", "Castaing", "Dufau",
    "Ducasse", "Laborde", "Lassalle", "Pujol", "Bordes", "Lamarque", "Casteran", "Darracq",
    "Duprat", "Larrieu", "Barthe", "Lescure", "Saint-Martin", "Dupuy", "Fourcade", "Lagardère",
    "Marsan", "Cazaux", "Destrac", "Hourcade", "Labarthe", "Peyrot", "Soubiran", "Tachoires",
    "Bégué", "Lannes", "Bousquet", "Campagne", "Garcia", "Martin", "Bernède", "Sarrade",
)  # fmt: skip

COMMENTS = {
    "low": (
        "Foie trop ferme, un peu décevant.",
        "Beaucoup de fonte à la cuisson, dommage.",
        "Goût fade, pas à la hauteur du prix.",
        "Texture granuleuse, je ne rachèterai pas ce lot.",
        "Foie abîmé à l'ouverture, présence de taches.",
    ),
    "mid": (
        "Correct sans plus, texture un peu irrégulière.",
        "Bon goût mais légère fonte à la cuisson.",
        "Produit honnête, emballage soigné.",
        "Assez bon, un peu gras à mon goût.",
        "Moyen, le précédent était meilleur.",
    ),
    "high": (
        "Excellent foie gras, fondant et goûteux.",
        "Texture soyeuse, parfait pour les fêtes.",
        "Très bon produit, peu de perte à la cuisson.",
        "Délicieux, mes invités ont adoré.",
        "Belle couleur, goût de noisette, bravo aux gaveurs.",
        "Parfait en terrine, je recommande.",
    ),
}

GENETICS = "mulard"


def ascii_slug(text: str) -> str:
    """Lower-case ASCII for e-mail local parts: 'Laëtitia Bégué' -> 'laetitia.begue'."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return folded.lower().replace(" ", ".").replace("'", "")


def easter_sunday(year: int) -> date:
    """Gregorian Easter (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return date(year, month, day + 1)


def french_holidays(year: int) -> set[date]:
    """The eleven French public holidays: slaughterhouses close on them."""
    easter = easter_sunday(year)
    fixed = [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)]
    movable = [easter + timedelta(days=1), easter + timedelta(days=39), easter + timedelta(days=50)]
    return {date(year, month, day) for month, day in fixed} | set(movable)
