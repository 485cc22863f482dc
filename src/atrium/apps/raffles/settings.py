"""The raffles application's settings group: ``ATRIUM_RAFFLES__*`` (docs/apps/raffles.md)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# drand's quicknet chain (https://drand.love/docs/http-api-reference): a 3-second
# unchained BLS beacon run by the League of Entropy.
QUICKNET_CHAIN_HASH = "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971"
QUICKNET_GENESIS = 1692803367


class RafflesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ATRIUM_RAFFLES__", extra="ignore")

    # Minutes a purchase holds its tickets while the payment is awaited.
    reservation_minutes: int = Field(default=15, ge=1, le=1440)
    # Most tickets one purchase may ask for.
    max_quantity_per_purchase: int = Field(default=100, ge=1, le=100_000)
    # The public list's `closing_soon` filter: open raffles closing within this many hours.
    closing_soon_hours: int = Field(default=24, ge=1, le=24 * 365)
    # Seconds between two passes of the scheduled jobs (open, close, draw, expire, refund).
    jobs_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    # Hours an Idempotency-Key's answer is kept for replay.
    idempotency_retention_hours: int = Field(default=24, ge=1, le=24 * 30)

    # The randomness beacon of the draw: its kind (`drand`), HTTP endpoint and chain.
    beacon: str = Field(default="drand", pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    beacon_url: str = Field(default="https://api.drand.sh", max_length=500)
    beacon_chain_hash: str = Field(default=QUICKNET_CHAIN_HASH, pattern=r"^[0-9a-f]{64}$")
    beacon_genesis_time: int = Field(default=QUICKNET_GENESIS, ge=0)
    beacon_period_seconds: int = Field(default=3, ge=1, le=3600)
    beacon_timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    # Stripe (https://docs.stripe.com/api): secret key (sk_test_… in test mode), the
    # webhook endpoint's signing secret (whsec_…), the API base (a fake in tests).
    stripe_secret_key: SecretStr = SecretStr("")
    stripe_webhook_secret: SecretStr = SecretStr("")
    stripe_api_base: str = Field(default="https://api.stripe.com", max_length=500)
    stripe_timeout_seconds: float = Field(default=20.0, gt=0, le=120)
    # Seconds of tolerance for the Stripe-Signature timestamp (Stripe's default: 300).
    stripe_webhook_tolerance_seconds: int = Field(default=300, ge=1, le=3600)
