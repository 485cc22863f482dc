"""Mounts every domain router under ``/api/v1``.

Routers are included into the application directly (one level, prefix ``/api/v1``)
rather than through an intermediate router: FastAPI matches nested routers level by level,
and the flat form is measurably cheaper per request (docs/benchmarks.md).
"""

from fastapi import APIRouter, FastAPI

from atrium.admin.router import router as admin_users_router
from atrium.audit.router import router as audit_router
from atrium.auth.router import router as auth_router
from atrium.files.router import router as files_router
from atrium.health.router import api_router as health_api_router
from atrium.profiles.router import me_router as profile_me_router
from atrium.profiles.router import router as profiles_router
from atrium.rbac.router import router as roles_router
from atrium.users.router import router as users_router
from atrium.verification.router import me_router as email_me_router
from atrium.verification.router import router as email_router

API_PREFIX = "/api/v1"
ROUTERS: list[APIRouter] = [
    auth_router,
    users_router,
    email_router,
    email_me_router,
    health_api_router,
    roles_router,
    admin_users_router,
    audit_router,
    profile_me_router,
    profiles_router,
    files_router,
]


def include_api(app: FastAPI) -> None:
    """Include every domain router in ``app`` under :data:`API_PREFIX`."""
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
