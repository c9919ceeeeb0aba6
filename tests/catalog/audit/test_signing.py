"""The audit signing key lives in a file outside the database: made with mode 600 on first use in local mode only,
required (and kept private) in production."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from catalog.audit.errors import SigningKeyMissing, SigningKeyUnusable
from catalog.audit.signing import platform_key, signature_valid, trusted_keys
from catalog.settings import Settings


def settings(tmp_path: Path, mode: str = "local", **values: object) -> Settings:
    secret = SecretStr("a-production-secret-a-production-secret")
    return Settings(mode=mode, data_dir=tmp_path, secret_key=secret, **values)  # type: ignore[arg-type]


def test_local_mode_makes_the_key_once_readable_only_by_its_owner(tmp_path: Path) -> None:
    local = settings(tmp_path)
    key = platform_key(local)

    path = tmp_path / "audit" / "signing-key.pem"
    assert local.resolved_audit_signing_key_file == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert platform_key(local).public_key == key.public_key  # used again, never replaced
    signature = key.sign_block("ab" * 32)
    assert signature_valid(key.public_key, signature, "ab" * 32)
    assert not signature_valid(key.public_key, signature, "cd" * 32)
    assert not signature_valid("not base64!", signature, "ab" * 32)


def test_production_refuses_to_make_a_key_or_to_use_one_others_may_read(tmp_path: Path) -> None:
    production = settings(tmp_path, mode="production")
    with pytest.raises(SigningKeyMissing, match="outside local mode it is never created"):
        platform_key(production)
    assert not production.resolved_audit_signing_key_file.exists()

    key = platform_key(settings(tmp_path))  # made as local mode would
    production.resolved_audit_signing_key_file.chmod(0o644)
    with pytest.raises(SigningKeyUnusable, match="chmod 600"):
        platform_key(production)
    production.resolved_audit_signing_key_file.chmod(0o600)
    assert platform_key(production).public_key == key.public_key


def test_a_file_that_is_no_ed25519_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text("not a key")
    path.chmod(0o600)
    with pytest.raises(SigningKeyUnusable, match="cannot be read"):
        platform_key(settings(tmp_path, audit_signing_key_file=path))


def test_verification_trusts_the_key_file_and_earlier_keys_named_in_the_settings(tmp_path: Path) -> None:
    assert trusted_keys(settings(tmp_path)) == frozenset()  # no key file yet, none named
    key = platform_key(settings(tmp_path))
    assert trusted_keys(settings(tmp_path, audit_trusted_public_keys=["b2xk"])) == {key.public_key, "b2xk"}
