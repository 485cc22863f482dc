"""SQLAlchemy tables, one module per aggregate. Importing this package registers them all."""

from atrium.models.audit import AuditEvent
from atrium.models.base import Base
from atrium.models.file import StoredFile
from atrium.models.mail import EmailToken, EmailTokenPurpose, OutboxMessage, OutboxStatus
from atrium.models.profile import Profile, UserPreferences
from atrium.models.role import Role, RoleParent, RolePermission, UserRole
from atrium.models.session import AuthSession, RefreshToken
from atrium.models.user import User, UserStatus

__all__ = [
    "AuditEvent",
    "AuthSession",
    "Base",
    "EmailToken",
    "EmailTokenPurpose",
    "OutboxMessage",
    "OutboxStatus",
    "Profile",
    "RefreshToken",
    "Role",
    "RoleParent",
    "RolePermission",
    "StoredFile",
    "User",
    "UserPreferences",
    "UserRole",
    "UserStatus",
]
