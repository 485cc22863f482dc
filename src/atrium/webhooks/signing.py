"""Signing secrets and Standard Webhooks signatures (https://www.standardwebhooks.com/).

A secret is ``whsec_`` + base64 of 32 random bytes; it is shown once and stored as a
Fernet token under ``social.secret_keys`` (:mod:`atrium.social.secret_box`). Each
attempt carries ``webhook-id`` (the event's id: the same on every attempt, for the
receiver's idempotency), ``webhook-timestamp`` (seconds since the epoch, of this
attempt) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of id.timestamp.body>``,
computed by the ``standardwebhooks`` package — once per valid secret, space-separated,
so during a rotation's overlap both the new and the previous secret sign.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from datetime import datetime

from standardwebhooks.webhooks import Webhook

PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret, ``whsec_`` + 44 base64 characters."""
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature_headers(
    msg_id: str, at: datetime, body: str, signing_secrets: Iterable[str]
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` sent at ``at`` (UTC)."""
    signatures = [Webhook(s).sign(msg_id, at, body) for s in signing_secrets]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
