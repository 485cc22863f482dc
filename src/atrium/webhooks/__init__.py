"""Webhooks: endpoints administered over the API, signed deliveries of domain events."""
