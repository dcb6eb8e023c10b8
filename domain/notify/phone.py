"""Phone numbers: validated and normalised to E.164 before any provider sees them."""

from __future__ import annotations

import phonenumbers

from domain.errors import InvalidInput
from domain.platform.redact import mask_phone


def to_e164(raw: str, *, region: str = "FR") -> str:
    """'06 12 34 56 78' -> '+33612345678'; raises InvalidInput for what cannot be a real number."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as error:
        raise InvalidInput(f"invalid phone number {mask_phone(raw)}: {error}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInput(f"invalid phone number {mask_phone(raw)}: not a valid number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
