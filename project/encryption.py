"""Secrets at rest: MultiFernet over FIELD_ENCRYPTION_KEY (first key encrypts, all decrypt)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from project.errors import ApplicationError, ErrorCode


class DecryptionFailed(ApplicationError):
    def __init__(self) -> None:
        super().__init__(
            ErrorCode.DECRYPTION_FAILED,
            "Stored credentials could not be decrypted. Please add your credentials again.",
        )


def _fernet() -> MultiFernet:
    # Built per call (cheap) so that settings overrides and key rotation apply immediately.
    return MultiFernet([Fernet(key.encode()) for key in settings.FIELD_ENCRYPTION_KEYS])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise DecryptionFailed() from exc


def reencrypt(token: str) -> str:
    """The same secret, encrypted with the newest key (for key rotation)."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise DecryptionFailed() from exc
