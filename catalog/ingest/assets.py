"""The Airflow Asset of each catalog item, which the pipelines announce each new version through (the version, row
count and batch in the event's extra). Imports Airflow's SDK only: the DAG files use it at parse time."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from airflow.sdk import Asset, AssetAlias

log = logging.getLogger(__name__)


def item_asset(item_code: str) -> Asset:
    return Asset(name=f"datashare.item.{item_code}", uri=f"datashare://items/{item_code}")


def versions_alias(item_code: str) -> AssetAlias:
    """What an ingestion DAG's tasks announce a new version through: the alias gets the item's Asset event only when a
    version was published (a task that quarantined or found nothing new succeeds without one)."""
    return AssetAlias(name=f"datashare.item.{item_code}.versions")


RELEASES = AssetAlias(name="datashare.releases")  # releases made outside Airflow (dags/announce_releases.py)


def read_pipelines(manifest: Path) -> list[dict[str, Any]]:
    """The pipeline manifest's entries (catalog/ingest/manifest.py writes it): the items DAG files build DAGs for."""
    try:
        return list(json.loads(manifest.read_text(encoding="utf-8"))["pipelines"])
    except FileNotFoundError:
        log.error(
            "NO INGESTION PIPELINES: the pipeline manifest %s does not exist. It is written after every catalog change "
            "that concerns the pipelines; `datashare catalog import <file>` (or `./dev run`) writes it at once. Is "
            "DATASHARE_DATA_DIR (or DATASHARE_ENV_FILE) set for this Airflow process as for the catalog's?",
            manifest,
        )
        return []
    except (ValueError, KeyError, TypeError) as error:  # a damaged manifest: say so, but load no half DAGs
        raise RuntimeError(f"{manifest} is not a pipeline manifest ({error}); rerun a datashare command") from None
