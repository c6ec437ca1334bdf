"""Request signing and private-key loading."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ingestor.kalshi import signing
from ingestor.kalshi.signing import (
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    PrivateKeyError,
    Signer,
    load_private_key,
    parse_public_key,
    verify,
)


def _write(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    os.chmod(path, mode)
    return path


def _pem(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    fmt: serialization.PrivateFormat,
    password: bytes | None = None,
) -> bytes:
    enc = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, enc)


def test_signature_verifies_with_public_key_under_digest_length_pss(rsa_key: rsa.RSAPrivateKey):
    signer = Signer("key-1", rsa_key)
    headers = signer.headers("get", "https://h/trade-api/v2/markets?limit=5", now_ms=1703123456789)
    assert headers[HEADER_KEY] == "key-1"
    assert headers[HEADER_TIMESTAMP] == "1703123456789"
    sig = base64.b64decode(headers[HEADER_SIGNATURE], validate=True)
    # the signed message is ts + METHOD + path, without the query string
    rsa_key.public_key().verify(
        sig,
        b"1703123456789GET/trade-api/v2/markets",
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
        hashes.SHA256(),
    )
    with pytest.raises(InvalidSignature):
        rsa_key.public_key().verify(
            sig,
            b"1703123456789GET/trade-api/v2/markets?limit=5",
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
            hashes.SHA256(),
        )


def test_verify_accepts_own_signature_and_rejects_other_path(rsa_key: rsa.RSAPrivateKey):
    pub_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pub = parse_public_key(pub_pem)
    sig = signing.sign(rsa_key, 1, "GET", "/trade-api/ws/v2")
    assert verify(pub, sig, 1, "GET", "/trade-api/ws/v2")
    assert not verify(pub, sig, 1, "GET", "/trade-api/v2")
    assert not verify(pub, sig, 2, "GET", "/trade-api/ws/v2")
    assert not verify(pub, "not base64!", 1, "GET", "/trade-api/ws/v2")


def test_signatures_differ_per_call_because_pss_is_salted(rsa_key: rsa.RSAPrivateKey):
    a = signing.sign(rsa_key, 5, "GET", "/p")
    b = signing.sign(rsa_key, 5, "GET", "/p")
    assert a != b


@pytest.mark.parametrize(
    "fmt", [serialization.PrivateFormat.TraditionalOpenSSL, serialization.PrivateFormat.PKCS8]
)
def test_pkcs1_and_pkcs8_keys_load(tmp_path: Path, rsa_key: rsa.RSAPrivateKey, fmt):
    path = _write(tmp_path / "k.pem", _pem(rsa_key, fmt))
    loaded = load_private_key(path)
    assert loaded.private_numbers() == rsa_key.private_numbers()
    header = path.read_bytes().splitlines()[0]
    expected = (
        b"RSA PRIVATE KEY"
        if fmt is serialization.PrivateFormat.TraditionalOpenSSL
        else (b"BEGIN PRIVATE KEY")
    )
    assert expected in header


def test_generated_key_pair_signs_and_verifies():
    private, public = signing.generate_key_pair(bits=1024)
    key = signing.parse_private_key(private)
    sig = signing.sign(key, 7, "GET", "/x")
    assert verify(parse_public_key(public), sig, 7, "GET", "/x")


def test_missing_key_names_the_variable(tmp_path: Path):
    with pytest.raises(PrivateKeyError, match=r"KALSHI_PRIVATE_KEY_PEM_PATH=.*not found"):
        load_private_key(tmp_path / "absent.pem")


def test_directory_instead_of_key_names_the_variable(tmp_path: Path):
    with pytest.raises(PrivateKeyError, match=r"KALSHI_PRIVATE_KEY_PEM_PATH=.*directory"):
        load_private_key(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_key_names_the_variable(tmp_path: Path, rsa_key: rsa.RSAPrivateKey):
    path = _write(tmp_path / "k.pem", _pem(rsa_key, serialization.PrivateFormat.PKCS8), 0o000)
    with pytest.raises(PrivateKeyError, match=r"KALSHI_PRIVATE_KEY_PEM_PATH=.*not readable"):
        load_private_key(path)


def test_unreadable_key_error_via_permission_error(tmp_path: Path, monkeypatch):
    path = tmp_path / "k.pem"
    path.write_bytes(b"x")

    def deny(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", deny)
    with pytest.raises(PrivateKeyError, match=r"KALSHI_PRIVATE_KEY_PEM_PATH=.*not readable"):
        load_private_key(path)


def test_ec_key_is_refused_with_a_clear_error(tmp_path: Path):
    key = ec.generate_private_key(ec.SECP256R1())
    path = _write(tmp_path / "ec.pem", _pem(key, serialization.PrivateFormat.PKCS8))
    with pytest.raises(PrivateKeyError, match=r"KALSHI_PRIVATE_KEY_PEM_PATH=.*needs an RSA key"):
        load_private_key(path)


def test_passphrase_protected_key_is_refused_with_a_clear_error(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
):
    pem = _pem(rsa_key, serialization.PrivateFormat.PKCS8, password=b"secret")
    path = _write(tmp_path / "enc.pem", pem)
    with pytest.raises(PrivateKeyError, match=r"KALSHI_PRIVATE_KEY_PEM_PATH=.*passphrase"):
        load_private_key(path)


def test_garbage_file_is_refused_with_a_clear_error(tmp_path: Path):
    path = _write(tmp_path / "junk.pem", b"hello")
    with pytest.raises(PrivateKeyError, match=r"KALSHI_PRIVATE_KEY_PEM_PATH=.*not a PEM"):
        load_private_key(path)


def test_key_readable_by_others_logs_a_warning(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
):
    path = _write(tmp_path / "k.pem", _pem(rsa_key, serialization.PrivateFormat.PKCS8), 0o644)
    with caplog.at_level(logging.WARNING, logger="ingestor.kalshi.signing"):
        load_private_key(path)
    assert any("readable by other users" in r.getMessage() for r in caplog.records)
    # the key material never reaches the log
    assert all("PRIVATE KEY" not in r.getMessage() for r in caplog.records)


def test_private_key_file_does_not_warn(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
):
    path = _write(tmp_path / "k.pem", _pem(rsa_key, serialization.PrivateFormat.PKCS8), 0o600)
    with caplog.at_level(logging.WARNING, logger="ingestor.kalshi.signing"):
        load_private_key(path)
    assert not caplog.records
