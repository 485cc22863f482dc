"""The account's own data: export (GDPR arts. 15, 20) and deletion with a grace period
(art. 17); docs/privacy.md."""
