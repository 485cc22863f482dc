"""Example values for the OpenAPI documentation (never used as real credentials)."""

EXAMPLE_EMAIL = "ada@example.com"
EXAMPLE_PASSWORD = "correct horse battery staple"  # noqa: S105  # nosec B105
EXAMPLE_NEW_PASSWORD = "new battery staple horse"  # noqa: S105  # nosec B105
EXAMPLE_ACCESS_TOKEN = "eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiIsInR5cCI6ImF0K2p3dCJ9..."  # noqa: S105  # nosec B105
EXAMPLE_REFRESH_TOKEN = "dGhpcyBpcyBhbiBleGFtcGxlIHJlZnJlc2ggdG9rZW4"  # noqa: S105  # nosec B105
