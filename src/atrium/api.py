"""Mounts every domain router under ``/api/v1``."""

from fastapi import APIRouter

from atrium.auth.router import router as auth_router
from atrium.health.router import api_router as health_api_router
from atrium.users.router import router as users_router
from atrium.verification.router import me_router as email_me_router
from atrium.verification.router import router as email_router

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(auth_router)
api_router.include_router(users_router)
api_router.include_router(email_router)
api_router.include_router(email_me_router)
api_router.include_router(health_api_router)
