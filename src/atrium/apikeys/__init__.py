"""API keys (personal access tokens): creation, listing and revocation by their owner and
by administrators. Authenticating with a key is :mod:`atrium.auth.api_keys`'s."""
