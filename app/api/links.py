"""The service's public URLs, for the links webhooks carry (built on ``LABELING_PUBLIC_URL``)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app


@dataclass(frozen=True)
class ApiLinks:
    public_url: str

    def export(self, project_id: int, snapshot: int) -> str:
        return f"{self._base}/api/v1/projects/{project_id}/export?format=jsonl&snapshot={snapshot}"

    def models(self, project_id: int) -> str:
        return f"{self._base}/api/v1/projects/{project_id}/models"

    @property
    def _base(self) -> str:
        return self.public_url.rstrip("/")


def api_links(app: Flask | None = None) -> ApiLinks:
    return ApiLinks((app or current_app).config["PUBLIC_URL"])
