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


def read_pipelines(manifest: Path | str) -> list[dict[str, Any]]:
    """The pipeline manifest's entries (catalog/ingest/manifest.py writes it): the items DAG files build DAGs for. A
    manifest on object storage (an s3:// URL) is read with one small GET; while the store cannot be reached, the copy
    last read on this machine serves (the DAGs stay), said in the log."""
    try:
        if isinstance(manifest, Path):
            return list(json.loads(manifest.read_text(encoding="utf-8"))["pipelines"])
        return list(json.loads(_read_shared(manifest))["pipelines"])
    except FileNotFoundError:
        log.error(
            "NO INGESTION PIPELINES: the pipeline manifest %s does not exist. It is written after every catalog change "
            "that concerns the pipelines; `datashare catalog import <file>` (or `./dev run`) writes it at once. Is "
            "DATASHARE_DATA_DIR or DATASHARE_MANIFEST_URL (or DATASHARE_ENV_FILE) set for this Airflow process as for "
            "the catalog's?",
            manifest,
        )
        return []
    except (ValueError, KeyError, TypeError) as error:  # a damaged manifest: say so, but load no half DAGs
        raise RuntimeError(f"{manifest} is not a pipeline manifest ({error}); rerun a datashare command") from None


def _read_shared(url: str) -> bytes:
    import hashlib

    from catalog import storage  # fsspec (and s3fs) only for a manifest on object storage

    # In this user's private folder (mode 0700), never under a name others can predict and plant.
    copy = f"manifest-{hashlib.sha256(url.encode()).hexdigest()[:16]}.json"
    try:
        data, fresh = storage.read_keeping_copy(url, copy)
    except FileNotFoundError:
        raise
    except storage.failures() as error:
        log.error("NO INGESTION PIPELINES: the pipeline manifest %s cannot be read (%s: %s) and this machine has no "
                  "copy of it yet. Can this Airflow process reach the object store (AWS_ENDPOINT_URL_S3, "
                  "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in its environment)?", url, type(error).__name__,
                  error)  # fmt: skip
        return b'{"pipelines": []}'
    if not fresh:
        log.error("PIPELINE MANIFEST UNREACHABLE: %s cannot be read; the DAGs are built from the copy this machine "
                  "read last (%s) until it can", url, storage.private_folder_path() / copy)  # fmt: skip
    return data
