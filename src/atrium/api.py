"""Mounts every domain router under ``/api/v1``."""

from fastapi import APIRouter

from atrium.admin.router import router as admin_users_router
from atrium.audit.router import router as audit_router
from atrium.auth.router import router as auth_router
from atrium.health.router import api_router as health_api_router
from atrium.rbac.router import router as roles_router
from atrium.users.router import router as users_router

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(auth_router)
api_router.include_router(users_router)
api_router.include_router(health_api_router)
api_router.include_router(roles_router)
api_router.include_router(admin_users_router)
api_router.include_router(audit_router)
