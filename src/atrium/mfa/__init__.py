"""Multi-factor authentication: TOTP factors, recovery codes, login with a second factor,
step-up, trusted devices and MFA required by role (docs/security.md)."""
