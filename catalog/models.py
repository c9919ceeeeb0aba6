"""Imports every ORM module so the metadata is complete (for Alembic and mappers)."""

from __future__ import annotations


def import_all_models() -> None:
    import catalog.access.models
    import catalog.audit.models
    import catalog.classification.models
    import catalog.departments.models
    import catalog.ingest.models
    import catalog.items.models
    import catalog.notifications.models
    import catalog.ops.models
    import catalog.push.models
    import catalog.subscriptions.models
    import catalog.utilisation.models  # noqa: F401
