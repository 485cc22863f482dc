"""Mounts every domain router under ``/api/v1``.

Routers are included into the application directly (one level, prefix ``/api/v1``)
rather than through an intermediate router: FastAPI matches nested routers level by level,
and the flat form is measurably cheaper per request (docs/benchmarks.md).
"""

from fastapi import APIRouter, FastAPI

from atrium.account.deletion_router import router as deletion_cancel_router
from atrium.account.email_router import me_router as email_me_router
from atrium.account.email_router import router as email_resend_router
from atrium.account.router import router as users_router
from atrium.account.security_router import router as security_events_router
from atrium.activity.router import router as activity_router
from atrium.admin.audit_router import router as audit_router
from atrium.admin.mfa_router import router as admin_mfa_router
from atrium.admin.router import router as admin_users_router
from atrium.apikeys.router import admin_router as admin_api_keys_router
from atrium.apikeys.router import router as api_keys_router
from atrium.auth.router import router as auth_router
from atrium.files.router import router as files_router
from atrium.health.router import api_router as health_api_router
from atrium.imports.router import router as imports_router
from atrium.mfa.auth_router import router as mfa_auth_router
from atrium.mfa.router import router as mfa_me_router
from atrium.notifications.router import admin_router as broadcast_router
from atrium.notifications.router import router as notifications_router
from atrium.notifications.stream import router as notification_stream_router
from atrium.passkeys.router import auth_router as passkey_auth_router
from atrium.passkeys.router import factor_router as passkey_factor_router
from atrium.passkeys.router import router as passkeys_router
from atrium.privacy.router import admin_router as admin_exports_router
from atrium.privacy.router import router as exports_router
from atrium.profiles.router import me_router as profile_me_router
from atrium.profiles.router import router as profiles_router
from atrium.rbac.router import router as roles_router
from atrium.social.admin_router import router as identity_providers_router
from atrium.social.identities_router import router as identities_router
from atrium.social.router import router as social_router
from atrium.verification.router import router as email_router
from atrium.webhooks.router import router as webhooks_router

API_PREFIX = "/api/v1"
ROUTERS: list[APIRouter] = [
    auth_router,
    mfa_auth_router,
    users_router,
    mfa_me_router,
    api_keys_router,
    passkeys_router,
    passkey_factor_router,
    passkey_auth_router,
    email_router,
    email_resend_router,
    email_me_router,
    health_api_router,
    roles_router,
    admin_users_router,
    admin_mfa_router,
    imports_router,
    admin_api_keys_router,
    audit_router,
    security_events_router,
    profile_me_router,
    profiles_router,
    files_router,
    notifications_router,
    notification_stream_router,
    broadcast_router,
    social_router,
    identities_router,
    identity_providers_router,
    webhooks_router,
    activity_router,
    exports_router,
    admin_exports_router,
    deletion_cancel_router,
]


def include_api(app: FastAPI) -> None:
    """Include every domain router in ``app`` under :data:`API_PREFIX`."""
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
