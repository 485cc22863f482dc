"""Realistic mixed traffic for your own Atrium deployment (Locust).

    uv run --with locust locust -f bench/locustfile.py --host https://atrium.example.com

Each simulated user registers once, then mostly reads its own account and sessions,
refreshes its tokens when they are near expiry, and now and then logs in again or
fails a login; a few operators (``AtriumAdmin``) search and page through accounts. Weights reflect an identity service in front of an app: reads dominate,
password work is rare. Point it at a staging deployment, never at production data.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from typing import Any

from locust import HttpUser, between, task
from locust.exception import StopUser

PASSWORD = "correct horse battery staple"


class AtriumUser(HttpUser):
    wait_time = between(0.5, 3)

    def on_start(self) -> None:
        self.email = f"locust-{uuid.uuid4().hex[:12]}@example.com"
        self.client.post(
            "/api/v1/auth/register",
            json={"email": self.email, "password": PASSWORD},
            name="/auth/register",
        )
        self._login()

    def _login(self) -> None:
        r = self.client.post(
            "/api/v1/auth/login",
            data={"username": self.email, "password": PASSWORD},
            name="/auth/login",
        )
        self._store(r.json())

    def _store(self, tokens: dict[str, Any]) -> None:
        self.access = tokens["access_token"]
        self.refresh = tokens["refresh_token"]
        self.expires_at = time.monotonic() + tokens["expires_in"]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}

    @task(20)
    def read_me(self) -> None:
        if time.monotonic() > self.expires_at - 60:
            self.refresh_tokens()
        self.client.get("/api/v1/users/me", headers=self.auth, name="/users/me")

    @task(3)
    def list_sessions(self) -> None:
        self.client.get("/api/v1/users/me/sessions", headers=self.auth, name="/users/me/sessions")

    @task(2)
    def refresh_tokens(self) -> None:
        r = self.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": self.refresh}, name="/auth/refresh"
        )
        if r.status_code == 200:
            self._store(r.json())
        else:
            self._login()

    @task(1)
    def update_name(self) -> None:
        self.client.patch(
            "/api/v1/users/me",
            json={"full_name": "Locust User"},
            headers=self.auth,
            name="/users/me [patch]",
        )

    @task(1)
    def login_again(self) -> None:
        self._login()

    @task(1)
    def failed_login(self) -> None:
        with self.client.post(
            "/api/v1/auth/login",
            data={"username": self.email, "password": "wrong password"},
            name="/auth/login [wrong password]",
            catch_response=True,
        ) as r:
            if r.status_code == 401:
                r.success()


class AtriumAdmin(HttpUser):
    """An operator searching accounts (set LOCUST_ADMIN_EMAIL and LOCUST_ADMIN_PASSWORD to
    an account holding `users:read`, e.g. one made with `atrium create-admin`)."""

    weight = 1
    wait_time = between(2, 10)

    def on_start(self) -> None:
        email = os.environ.get("LOCUST_ADMIN_EMAIL")
        password = os.environ.get("LOCUST_ADMIN_PASSWORD")
        if not email or not password:
            raise StopUser()
        r = self.client.post(
            "/api/v1/auth/login",
            data={"username": email, "password": password},
            name="/auth/login [admin]",
        )
        self.auth = {"Authorization": f"Bearer {r.json()['access_token']}"}

    @task(3)
    def search(self) -> None:
        term = random.choice(["ada", "lovelace", "hopper", "example.com", "smith"])
        self.client.get(
            "/api/v1/admin/users",
            params={"q": term, "limit": 50},
            headers=self.auth,
            name="/admin/users?q=",
        )

    @task(1)
    def page_through(self) -> None:
        cursor = None
        for _ in range(3):
            url = "/api/v1/admin/users?limit=50&sort=-created_at"
            r = self.client.get(
                url + (f"&cursor={cursor}" if cursor else ""),
                headers=self.auth,
                name="/admin/users [page]",
            )
            cursor = r.json().get("next_cursor") if r.status_code == 200 else None
            if not cursor:
                break
