"""Account email flows: verification, password reset, email change, and registration
without account enumeration. Every message goes through the outbox (atrium.mail)."""
