"""The audit chain's Ed25519 key: it lives in a file outside the database, so that whoever owns the database can
rewrite rows and recompute hashes, but cannot sign the result."""

from __future__ import annotations

import base64
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from catalog.audit.errors import SigningKeyMissing, SigningKeyUnusable
from catalog.settings import Settings

MESSAGE_PREFIX = b"datashare audit block "  # what is signed: this, then the block's hash (hex)


@dataclass(frozen=True)
class AuditKey:
    """The private key that signs sealed blocks, and its public half as text (base64 of the raw 32 bytes)."""

    private: Ed25519PrivateKey
    public_key: str

    def sign_block(self, block_hash: str) -> str:
        return base64.b64encode(self.private.sign(block_message(block_hash))).decode("ascii")


def block_message(block_hash: str) -> bytes:
    return MESSAGE_PREFIX + block_hash.encode("ascii")


def public_key_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def signature_valid(public_key: str, signature: str, block_hash: str) -> bool:
    """Whether ``signature`` (base64) is the key's signature of the block's hash; malformed input is not valid."""
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
        key.verify(base64.b64decode(signature, validate=True), block_message(block_hash))
    except (InvalidSignature, ValueError):
        return False
    return True


def load_key(path: Path, *, create: bool, strict: bool) -> AuditKey:
    """The key in ``path`` (PEM, PKCS #8). ``create``: make one (mode 600) if there is none; ``strict``: refuse a key
    file that others than its owner may read or write."""
    if not path.exists():
        if not create:
            raise SigningKeyMissing(
                f"the audit signing key {path} does not exist; outside local mode it is never created: make it "
                "(an Ed25519 private key in PEM, mode 600) and set DATASHARE_AUDIT_SIGNING_KEY_FILE"
            )
        _create(path)
    if strict and stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise SigningKeyUnusable(f"the audit signing key {path} may be read by others than its owner: chmod 600 it")
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise SigningKeyUnusable(f"the audit signing key {path} cannot be read: {error}") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise SigningKeyUnusable(f"the audit signing key {path} is not an Ed25519 private key")
    return AuditKey(private, public_key_text(private.public_key()))


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process made it first: use theirs
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)


def public_key_of(path: Path) -> str | None:
    """The public half of the key in ``path``, or None when there is no such file (verification needs no private
    key of its own; it reads the file if it is there)."""
    if not path.exists():
        return None
    return load_key(path, create=False, strict=False).public_key


def platform_key(settings: Settings) -> AuditKey:
    """The key the settings name: made on first use in local mode; outside it, it must exist, readable only by
    its owner."""
    local = settings.mode == "local"
    return load_key(settings.resolved_audit_signing_key_file, create=local, strict=not local)


def trusted_keys(settings: Settings) -> frozenset[str]:
    """Public keys whose signatures verification accepts: the key file's (if this machine has it) and the earlier
    ones the settings still trust."""
    current = public_key_of(settings.resolved_audit_signing_key_file)
    return frozenset([*settings.audit_trusted_public_keys, *([current] if current else [])])
