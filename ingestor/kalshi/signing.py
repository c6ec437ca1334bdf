"""Kalshi request signing: RSA-PSS/SHA-256 over timestamp_ms + METHOD + path (no query).

Pure functions, no I/O except loading a key file; shared by the clients and the simulator.
"""

from __future__ import annotations

import base64
import logging
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

log = logging.getLogger(__name__)

KEY_ENV = "KALSHI_PRIVATE_KEY_PEM_PATH"

HEADER_KEY = "KALSHI-ACCESS-KEY"
HEADER_TIMESTAMP = "KALSHI-ACCESS-TIMESTAMP"
HEADER_SIGNATURE = "KALSHI-ACCESS-SIGNATURE"


class PrivateKeyError(ValueError):
    """The private key at KALSHI_PRIVATE_KEY_PEM_PATH cannot be used."""




def load_private_key(path: str | os.PathLike[str], env_name: str = KEY_ENV) -> rsa.RSAPrivateKey:
    """Load an unencrypted RSA key (PKCS#1 or PKCS#8 PEM); errors name the variable."""
    p = Path(path)
    where = f"{env_name}={p}"
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise PrivateKeyError(f"{where}: file not found") from None
    except PermissionError:
        raise PrivateKeyError(f"{where}: file not readable by this user") from None
    except IsADirectoryError:
        raise PrivateKeyError(f"{where}: is a directory, expected a PEM file") from None
    try:
        mode = p.stat().st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            log.warning(
                "private key readable by other users path=%s mode=%o (chmod 600 it)",
                p,
                stat.S_IMODE(mode),
            )
    except OSError:
        pass
    return parse_private_key(data, where)


def parse_private_key(data: bytes, where: str = KEY_ENV) -> rsa.RSAPrivateKey:
    """Parse PEM bytes into an RSA private key or raise PrivateKeyError saying why."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise PrivateKeyError(
            f"{where}: key is passphrase-protected; export it without a passphrase "
            "(openssl rsa -in key.pem -out key-plain.pem)"
        ) from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise PrivateKeyError(f"{where}: not a PEM private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PrivateKeyError(f"{where}: key is {type(key).__name__}, Kalshi needs an RSA key")
    return key


def parse_public_key(data: bytes) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("public key is not RSA")
    return key


def signing_path(url_or_path: str) -> str:
    """The part of a URL that is signed: the full path from the host root, without the query."""
    return urlsplit(url_or_path).path or "/"


def message(timestamp_ms: int | str, method: str, url_or_path: str) -> bytes:
    return f"{timestamp_ms}{method.upper()}{signing_path(url_or_path)}".encode()


def _pss(salt_length: int) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt_length)


def sign(key: rsa.RSAPrivateKey, timestamp_ms: int | str, method: str, url_or_path: str) -> str:
    """Base64 RSA-PSS(SHA-256, MGF1 SHA-256, salt = digest length) signature."""
    sig = key.sign(message(timestamp_ms, method, url_or_path), _pss(padding.PSS.DIGEST_LENGTH),
                   hashes.SHA256())
    return base64.b64encode(sig).decode("ascii")


def verify(
    public_key: rsa.RSAPublicKey,
    signature_b64: str,
    timestamp_ms: int | str,
    method: str,
    path: str,
    *,
    lenient_salt: bool = False,
) -> bool:
    """True when the signature matches; `path` is verified exactly as given (query and all)."""
    try:
        sig = base64.b64decode(signature_b64, validate=True)
    except (ValueError, TypeError):
        return False
    msg = f"{timestamp_ms}{method.upper()}{path}".encode()
    salt = padding.PSS.AUTO if lenient_salt else padding.PSS.DIGEST_LENGTH
    try:
        public_key.verify(sig, msg, _pss(salt), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class Signer:
    """Holds the key id and key; produces the three auth headers for one request."""

    key_id: str
    key: rsa.RSAPrivateKey

    def headers(self, method: str, url_or_path: str, now_ms: int | None = None) -> dict[str, str]:
        ts = str(now_ms if now_ms is not None else int(time.time() * 1000))
        return {
            HEADER_KEY: self.key_id,
            HEADER_TIMESTAMP: ts,
            HEADER_SIGNATURE: sign(self.key, ts, method, url_or_path),
        }

    @classmethod
    def from_file(cls, key_id: str, path: str | os.PathLike[str]) -> Signer:
        return cls(key_id=key_id, key=load_private_key(path))


def generate_key_pair(bits: int = 2048) -> tuple[bytes, bytes]:
    """A fresh (private PKCS#8 PEM, public PEM) pair, for the simulator and tests."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public
