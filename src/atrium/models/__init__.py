"""SQLAlchemy tables, one module per aggregate. Importing this package registers them all."""

from atrium.models.activity import (
    AnalyticsDay,
    LoginDay,
    RetentionCohort,
    SessionDeviceDay,
    UserActivityDay,
)
from atrium.models.api_key import ApiKey
from atrium.models.audit import AuditEvent
from atrium.models.base import Base
from atrium.models.data_export import ACTIVE_EXPORT_STATES, DataExport, ExportStatus
from atrium.models.event import DeliveryStatus, Event, EventDelivery
from atrium.models.file import StoredFile
from atrium.models.identity import IdentityProvider, OAuthTicket, UserIdentity
from atrium.models.job import JobRun
from atrium.models.mail import EmailToken, EmailTokenPurpose, OutboxMessage, OutboxStatus
from atrium.models.mfa import MfaChallenge, MfaFactor, MfaRecoveryCode, TrustedDevice
from atrium.models.notification import Notification, NotificationBroadcast
from atrium.models.passkey import Passkey, WebAuthnChallenge
from atrium.models.profile import Profile, UserPreferences
from atrium.models.role import Role, RoleParent, RolePermission, UserRole
from atrium.models.session import AuthSession, RefreshToken
from atrium.models.user import User, UserStatus
from atrium.models.user_import import ImportStatus, UserImport
from atrium.models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ACTIVE_EXPORT_STATES",
    "AnalyticsDay",
    "ApiKey",
    "AuditEvent",
    "AuthSession",
    "Base",
    "DataExport",
    "DeliveryStatus",
    "EmailToken",
    "EmailTokenPurpose",
    "Event",
    "EventDelivery",
    "ExportStatus",
    "IdentityProvider",
    "ImportStatus",
    "JobRun",
    "LoginDay",
    "MfaChallenge",
    "MfaFactor",
    "MfaRecoveryCode",
    "Notification",
    "NotificationBroadcast",
    "OAuthTicket",
    "OutboxMessage",
    "OutboxStatus",
    "Passkey",
    "Profile",
    "RefreshToken",
    "RetentionCohort",
    "Role",
    "RoleParent",
    "RolePermission",
    "SessionDeviceDay",
    "StoredFile",
    "TrustedDevice",
    "User",
    "UserActivityDay",
    "UserIdentity",
    "UserImport",
    "UserPreferences",
    "UserRole",
    "UserStatus",
    "WebAuthnChallenge",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
