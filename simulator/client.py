"""The HTTP calls the simulator makes: as an admin (users, meters, config) and as meters."""

from __future__ import annotations

import time
from typing import Any

import httpx


class ApiError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        try:
            self.error = response.json().get("error", {})
        except ValueError:
            self.error = {"code": "unknown", "message": response.text[:200]}
        self.code = self.error.get("code", "unknown")
        super().__init__(
            f"{response.request.method} {response.request.url.path}: "
            f"{self.status} {self.code}: {self.error.get('message')}"
        )


class ApiClient:
    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=timeout)
        self.token: str | None = None

    def close(self) -> None:
        self.http.close()

    def wait_until_up(self, timeout_secs: float = 60.0) -> None:
        """Wait for the API to answer /health (it may still be starting)."""
        deadline = time.monotonic() + timeout_secs
        while True:
            try:
                if self.http.get("/health").status_code in (200, 503):
                    return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """An admin call; its JSON answer (None for 204), ApiError for a refusal."""
        return self._call(method, path, **kwargs)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        response = self.http.request(method, path, headers=headers, **kwargs)
        if response.status_code >= 400:
            raise ApiError(response)
        return None if response.status_code == 204 else response.json()

    def login(self, username: str, password: str) -> None:
        body = self._call(
            "POST", "/api/auth/login", json={"username": username, "password": password}
        )
        self.token = body["access_token"]

    def create_user(self, username: str, password: str, role: str, wallet: str | None) -> None:
        body = {"username": username, "password": password, "role": role, "wallet_address": wallet}
        self._call("POST", "/api/admin/users", json=body)

    def meters(self) -> dict[str, dict[str, Any]]:
        return {meter["serial"]: meter for meter in self._call("GET", "/api/admin/meters")}

    def register_meter(
        self, serial: str, owner: str, public_key: str, device: dict[str, str] | None = None
    ) -> str:
        body = {"serial": serial, "owner_username": owner, "public_key": public_key}
        body |= device or {}  # registry fields (technology, capacity_kw, ...): certificates
        return self._call("POST", "/api/admin/meters", json=body)["api_key"]

    def rotate_key(self, serial: str) -> str:
        return self._call("POST", f"/api/admin/meters/{serial}/rotate-key")["api_key"]

    def config(self) -> dict[str, Any]:
        return self._call("GET", "/api/admin/config")

    def reading(self, reading_id: int) -> dict[str, Any]:
        return self._call("GET", f"/api/meters/minting-status/{reading_id}")

    def submit(self, api_key: str, reading: dict[str, Any]) -> httpx.Response:
        """As the meter: its own key, no user token."""
        return self.http.post(
            "/api/meters/submit-reading", json=reading, headers={"X-API-Key": api_key}
        )

    def submit_batch(self, api_key: str, readings: list[dict[str, Any]]) -> httpx.Response:
        return self.http.post(
            "/api/meters/submit-batch", json={"readings": readings}, headers={"X-API-Key": api_key}
        )
