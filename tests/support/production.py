"""Keys production accepts (domain/platform/keys.py), for processes started with APP_ENV=production
that test something else than the keys."""

from __future__ import annotations

from cryptography.fernet import Fernet

from domain.platform.keys import MIN_AUDIT_KEY_CHARS

PRODUCTION_KEYS = {
    "AUDIT_SUBJECT_KEY": "k" * MIN_AUDIT_KEY_CHARS,
    "PAYLOAD_KEYS": Fernet.generate_key().decode(),
}
