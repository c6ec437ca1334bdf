"""Fixtures for the Kalshi protocol and client tests."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    """One RSA key for the session (generated, never stored in the repository)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)
