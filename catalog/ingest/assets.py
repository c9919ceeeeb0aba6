"""The Airflow Asset of each catalog item, which the pipelines announce each new version through (the version, row
count and batch in the event's extra). Imports Airflow's SDK only: the DAG files use it at parse time."""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias


def item_asset(item_code: str) -> Asset:
    return Asset(name=f"datashare.item.{item_code}", uri=f"datashare://items/{item_code}")


def versions_alias(item_code: str) -> AssetAlias:
    """What an ingestion DAG's tasks announce a new version through: the alias gets the item's Asset event only when a
    version was published (a task that quarantined or found nothing new succeeds without one)."""
    return AssetAlias(name=f"datashare.item.{item_code}.versions")


RELEASES = AssetAlias(name="datashare.releases")  # releases made outside Airflow (dags/announce_releases.py)
