"""Secret links: a random nonce is stored, the token is derived from it, only the token's hash is looked up.

A token is an HMAC-SHA256, under SECRET_KEY, of a random 128-bit nonce and the link's purpose. The
database keeps the nonce and the SHA-256 of the token: a copy of the database alone opens nothing,
while the worker can re-derive the token when it writes the e-mail that carries it (so no secret
ever sits in a queue or an outbox row). Rotating SECRET_KEY therefore reissues every link.
"""

import base64
import hashlib
import hmac
import secrets

from django.conf import settings


def new_nonce():
    return secrets.token_hex(16)


def token_for(purpose, nonce):
    mac = hmac.new(settings.SECRET_KEY.encode(), f"{purpose}:{nonce}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def hash_token(token):
    """The stored form of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()
