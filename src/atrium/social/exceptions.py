"""Errors of social login, each with a stable ``code``."""

from __future__ import annotations

from atrium.errors import AppError, NotFound


class ProviderNotFound(NotFound):
    code = "provider_not_found"
    title = "No such identity provider"


class ProviderExists(AppError):
    status = 409
    code = "provider_exists"
    title = "An identity provider of this id exists"


class ProviderReadOnly(AppError):
    """Providers of the settings change only with the settings."""

    status = 409
    code = "provider_read_only"
    title = "The provider is configured in the settings"


class InvalidProviderConfig(AppError):
    status = 422
    code = "invalid_provider_config"
    title = "The provider configuration is incomplete"


class SecretKeyMissing(AppError):
    status = 409
    code = "secret_key_missing"
    title = "No key to encrypt client secrets"


class ProviderUnavailable(AppError):
    """The provider could not be reached or answered something that is not a valid
    protocol message (discovery, JWKS, token endpoint, GitHub API)."""

    status = 502
    code = "provider_unavailable"
    title = "The identity provider did not answer correctly"


class InvalidOAuthState(AppError):
    """Unknown, used, expired, or started by another browser (RFC 9700 §4.7, login CSRF)."""

    status = 400
    code = "invalid_oauth_state"
    title = "The sign-in attempt is not valid"


class IssuerMismatch(AppError):
    """The authorization response's ``iss`` is not the provider's (RFC 9207, mix-up)."""

    status = 400
    code = "issuer_mismatch"
    title = "The response came from another issuer"


class AuthorizationDenied(AppError):
    status = 400
    code = "authorization_denied"
    title = "The identity provider did not authorize the sign-in"


class InvalidIdToken(AppError):
    """Signature, ``iss``, ``aud``, ``azp``, ``exp``, ``iat`` or ``nonce`` of the ID token
    is wrong (OpenID Connect Core §3.1.3.7)."""

    status = 401
    code = "invalid_id_token"
    title = "The identity token is not valid"


class ProviderEmailMissing(AppError):
    status = 422
    code = "provider_email_missing"
    title = "The provider gave no email address"


class InvalidRedirect(AppError):
    status = 400
    code = "invalid_redirect_to"
    title = "redirect_to is not allowed"


class InvalidLoginCode(AppError):
    status = 400
    code = "invalid_login_code"
    title = "The login code is not valid"


class IdentityLinkedElsewhere(AppError):
    status = 409
    code = "identity_linked_elsewhere"
    title = "This identity is linked to another account"


class IdentityNotFound(NotFound):
    code = "identity_not_found"
    title = "No such linked identity"


class LastLoginMethod(AppError):
    status = 409
    code = "last_login_method"
    title = "This is the account's only way to sign in"


class InvalidLinkTicket(AppError):
    status = 400
    code = "invalid_link_ticket"
    title = "The link confirmation has expired"
