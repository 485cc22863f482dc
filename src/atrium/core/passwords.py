"""Password hashing: argon2id for new hashes; bcrypt, other argon2 variants and PBKDF2
(imported accounts, :mod:`atrium.core.legacy_hashes`) accepted and upgraded on login.

Parameters default to the OWASP Password Storage Cheat Sheet (argon2id, m=19 MiB, t=2,
p=1). Hashing is CPU-bound and runs in a dedicated pool of ``hash_concurrency`` threads
(argon2-cffi releases the GIL), so the event loop keeps serving other requests while
logins are verified. The pool's threads run at a lower scheduling priority
(``hash_thread_niceness``, Linux per-thread nice): when the CPU is contended, the event
loop's thread wins it, and a login storm slows logins down rather than everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import argon2
from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from atrium.config import AuthSettings
from atrium.core.legacy_hashes import Pbkdf2Hasher

_T = TypeVar("_T")

# The password hash of an account created by social login, which has no password: no
# hasher recognises it, and verifying against it costs the same as a wrong password.
UNUSABLE_PASSWORD = "!unusable"  # noqa: S105  # nosec B105


def has_usable_password(stored_hash: str) -> bool:
    """False for an account that has no password (social login only)."""
    return not stored_hash.startswith("!")


# bcrypt reads at most 72 bytes; hashes made by older bcrypt libraries silently truncated.
_BCRYPT_MAX_BYTES = 72


class _LegacyBcryptHasher(BcryptHasher):
    """Verifies legacy bcrypt hashes the way they were made (first 72 bytes)."""

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        raw = password.encode() if isinstance(password, str) else password
        return super().verify(raw[:_BCRYPT_MAX_BYTES], hash)


def normalize_password(password: str) -> str:
    """NFKC-normalise a password before hashing (NIST SP 800-63B §5.1.1.2)."""
    return unicodedata.normalize("NFKC", password)


class PasswordHasher:
    """Hash and verify passwords off the event loop.

    ``verify`` answers ``(matches, new_hash)``: ``new_hash`` is set when the stored hash
    is bcrypt or argon2 with weaker parameters than the current settings, so the caller
    can upgrade it after a successful login.
    """

    def __init__(self, settings: AuthSettings) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=settings.argon2_time_cost,
                    memory_cost=settings.argon2_memory_cost_kib,
                    parallelism=settings.argon2_parallelism,
                ),
                _LegacyBcryptHasher(),
                Pbkdf2Hasher(),
            )
        )
        self._params = (
            settings.argon2_time_cost,
            settings.argon2_memory_cost_kib,
            settings.argon2_parallelism,
        )
        self._executor = ThreadPoolExecutor(
            max_workers=settings.hash_concurrency,
            thread_name_prefix="atrium-hash",
            initializer=_lower_thread_priority,
            initargs=(settings.hash_thread_niceness,),
        )
        # A real hash to verify against when there is no such account, so that a wrong
        # email costs the same as a wrong password (OWASP Authentication Cheat Sheet).
        self._dummy_hash = self._hash.hash("atrium-dummy-password-for-timing")

    def hash_sync(self, password: str) -> str:
        return self._hash.hash(normalize_password(password))

    def verify_sync(self, password: str, stored_hash: str) -> tuple[bool, str | None]:
        normalized = normalize_password(password)
        try:
            ok, new_hash = self._hash.verify_and_update(normalized, stored_hash)
            if not ok and normalized != password and not stored_hash.startswith("$argon2id$"):
                # A hash made elsewhere (imported) may be of the password as typed, before
                # NFKC: try that too, and store the upgrade of the normalised form.
                ok = self._hash.verify(password, stored_hash)
                new_hash = self._hash.hash(normalized) if ok else None
        except (UnknownHashError, ValueError):
            return False, None
        if new_hash is not None and self._at_least_as_strong(stored_hash):
            new_hash = None
        return ok, new_hash

    def _at_least_as_strong(self, stored_hash: str) -> bool:
        """An argon2id hash whose every parameter is >= the configured one is kept: lowering
        the settings must never weaken stored hashes."""
        if not stored_hash.startswith("$argon2id$"):
            return False
        try:
            params = argon2.extract_parameters(stored_hash)
        except argon2.exceptions.InvalidHashError:
            return False
        return (
            params.time_cost >= self._params[0]
            and params.memory_cost >= self._params[1]
            and params.parallelism >= self._params[2]
        )

    async def hash(self, password: str) -> str:
        """Hash ``password`` with argon2id in a worker thread."""
        return await self._run(self.hash_sync, password)

    async def verify(self, password: str, stored_hash: str | None) -> tuple[bool, str | None]:
        """Verify in a worker thread; ``stored_hash=None`` (or an account without a
        password) verifies against a dummy hash."""
        if stored_hash is None or not has_usable_password(stored_hash):
            await self._run(self.verify_sync, password, self._dummy_hash)
            return False, None
        return await self._run(self.verify_sync, password, stored_hash)

    async def _run(self, fn: Callable[..., _T], *args: str) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        """Stop the hashing threads (queued work is dropped)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _lower_thread_priority(niceness: int) -> None:
    if niceness > 0 and hasattr(os, "setpriority"):
        # On Linux a thread is a task of its own: this lowers only this thread's priority.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
