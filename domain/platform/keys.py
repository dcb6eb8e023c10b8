"""Production refuses the development keys: with ENVIRONMENT (or APP_ENV) = production, an empty
or development AUDIT_SUBJECT_KEY or PAYLOAD_KEYS stops start-up (every entry point goes through
`runtime.setup`), so a deployment never seals personal data with a key printed in this source,
nor hashes its audit subjects with one. `make run` (development) keeps its fixed keys."""

from __future__ import annotations

from domain.platform import audit, sealing
from domain.platform.settings import Settings

#: Shortest AUDIT_SUBJECT_KEY accepted in production (HMAC-SHA256: 32 bytes of entropy is enough).
MIN_AUDIT_KEY_CHARS = 32
MAKE_AUDIT_KEY = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
MAKE_PAYLOAD_KEY = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


class DevelopmentKeys(RuntimeError):
    """Production settings that still use a development key (the message says how to fix it)."""


def problems(settings: Settings) -> list[str]:
    """What is wrong with the keys for this environment (nothing outside production)."""
    if settings.environment != "production":
        return []
    found = []
    audit_key = settings.audit_subject_key.get_secret_value().strip()
    if audit_key in ("", audit.DEVELOPMENT_KEY) or len(audit_key) < MIN_AUDIT_KEY_CHARS:
        found.append(
            f"AUDIT_SUBJECT_KEY is empty, the development key or shorter than "
            f"{MIN_AUDIT_KEY_CHARS} characters; make one with: {MAKE_AUDIT_KEY} (keep it: "
            "changing it splits each person's processing history in two)"
        )
    payload_keys = [k.strip() for k in settings.payload_keys.get_secret_value().split(",")]
    first = next((k for k in payload_keys if k), "")
    # An older key may still be the development one, to open what was sealed before a rotation.
    if first in ("", sealing.DEVELOPMENT_KEY):
        found.append(
            "PAYLOAD_KEYS is empty or seals with the development key; make a key with: "
            f"{MAKE_PAYLOAD_KEY} and put it first"
        )
    return found


def check_production_keys(settings: Settings) -> None:
    """At start-up: raise naming every key production refuses, and how to make a real one."""
    found = problems(settings)
    if found:
        raise DevelopmentKeys("refused with ENVIRONMENT/APP_ENV=production: " + "; ".join(found))
