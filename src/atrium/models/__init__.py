"""SQLAlchemy tables, one module per aggregate. Importing this package registers them all."""

from atrium.models.base import Base
from atrium.models.session import AuthSession, RefreshToken
from atrium.models.user import User, UserStatus

__all__ = ["AuthSession", "Base", "RefreshToken", "User", "UserStatus"]
