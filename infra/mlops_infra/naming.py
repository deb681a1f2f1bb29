"""Resource names, from project, environment, subscription and a generation number.

Free of Pulumi, so `mlops init` and its consistency check use the same rules."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Names:
    """Resource names: readable, and globally unique where Azure requires it.

    The suffix hashes subscription, project, stack and a generation number, so
    a re-run reuses every name; after destroying a stack whose key vault is
    kept soft-deleted (purge protection), raise mlops:nameGeneration."""

    project: str
    env: str
    suffix: str

    @staticmethod
    def of(settings, env: str | None = None) -> Names:
        """Names for a stack's settings (project, subscription_id, name_generation)."""
        env = env or settings.stack
        return Names.build(
            settings.project, env, settings.subscription_id, settings.name_generation
        )

    @staticmethod
    def build(project: str, env: str, subscription_id: str, generation: int = 1) -> Names:
        seed = f"{subscription_id}/{project}/{env}/{generation}"
        return Names(project, env, hashlib.sha256(seed.encode()).hexdigest()[:6])

    @property
    def resource_group(self) -> str:
        return f"rg-{self.project}-{self.env}"

    @property
    def workspace(self) -> str:
        return f"mlw-{self.project}-{self.env}"

    @property
    def log_analytics(self) -> str:
        return f"log-{self.project}-{self.env}"

    @property
    def app_insights(self) -> str:
        return f"appi-{self.project}-{self.env}"

    @property
    def key_vault(self) -> str:  # 3-24 letters, digits, dashes
        return f"kv-{self.project[:8]}-{self.env[:7]}-{self.suffix}"

    @property
    def storage_account(self) -> str:  # 3-24 lowercase letters and digits
        return f"st{_alnum(self.project)[:9]}{self.env[:7]}{self.suffix}"

    @property
    def container_registry(self) -> str:  # 5-50 letters and digits
        return f"cr{_alnum(self.project)[:20]}{self.env}{self.suffix}"

    @property
    def registry(self) -> str:
        return f"mlr-{self.project}"

    def identity(self, role: str) -> str:
        return f"id-{self.project}-{self.env}-{role}"


def _alnum(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())
