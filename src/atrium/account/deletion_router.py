"""HTTP route that cancels an owner's deletion: /api/v1/auth/deletion/cancel (public: the
caller has no session any more; the token is the proof)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from atrium.account.deletion import DeletionService
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.errors import ValidationFailed, problem_responses
from atrium.users.schemas import DeletionCancel
from atrium.verification.exceptions import InvalidEmailToken

router = APIRouter(prefix="/auth/deletion", tags=["auth"])


@router.post(
    "/cancel",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(InvalidEmailToken, ValidationFailed),
)
async def cancel_deletion(body: DeletionCancel, db: DbSession, ctx: Ctx) -> Response:
    """Keep an account scheduled for deletion (public: the emailed or sign-in token)."""
    await DeletionService(db, ctx).cancel(body.token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
