"""Social login: Atrium as a relying party of OpenID Connect providers and of GitHub,
with account-linking rules that cannot be turned into an account takeover
(docs/social-login.md)."""
