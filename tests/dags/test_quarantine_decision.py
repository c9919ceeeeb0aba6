"""A quarantined batch raises a required action in Airflow (human in the loop): a release there publishes the batch as
the next version and announces it as the item's Asset event, as the platform user who made it and through the same
checks as the API; a release made elsewhere is announced by the announce_releases DAG. Real dag.test() runs on SQLite
and PostgreSQL, answered the way Airflow's Required actions page answers (its API handler)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from catalog.audit.models import AuditEvent
from catalog.db import make_engine, session_scope
from catalog.ingest.models import IngestBatch, ItemVersion
from catalog.ingest.quarantine import release_batch
from tests.dags.test_ingest_items import (  # noqa: F401  (platform: a fixture)
    asset_events,
    dagbag,
    latest_event_extra,
    new_events,
    platform,
)

POPULATION, DAG_ID = "PSGA-RK-0001", "ingest_psga_rk_0001"
FAULTY = "faulty/psga_population_20261122.csv"  # two resident IDs with a wrong check digit: quarantined


@pytest.fixture
def quarantining(platform: str, samples_dir: Path, tmp_path: Path, airflow_db: Path) -> str:  # noqa: F811
    return publish_then_drop_a_faulty_export(platform, samples_dir, tmp_path)


def publish_then_drop_a_faulty_export(platform: str, samples_dir: Path, tmp_path: Path) -> str:  # noqa: F811
    """The population item published once, then a faulty export as the newest in its drop folder."""
    run = dagbag().get_dag(DAG_ID).test()
    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    drop = next((tmp_path / "data").rglob("psga_population_*.csv")).parent
    shutil.copy(samples_dir / FAULTY, drop)
    return platform


class Respondent(threading.Thread):
    """Answers the run's required action as an Airflow user once the task waits for it; ``first`` are answers tried
    before (each Airflow's refusal is kept in ``refused``)."""

    def __init__(
        self, username: str, option: str, reason: str, before: Any = None, first: tuple[str, ...] = ()
    ) -> None:
        super().__init__(daemon=True)
        self.username, self.option, self.reason, self.before, self.first = username, option, reason, before, first
        self.body: str | None = None
        self.error: BaseException | None = None
        self.refused: list[int] = []

    def run(self) -> None:
        try:
            self._answer()
        except BaseException as error:  # reported by the test
            self.error = error

    def _answer(self) -> None:
        from airflow.api_fastapi.app import create_auth_manager
        from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
        from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from fastapi import HTTPException

        create_auth_manager()  # as the api-server has it: it checks who may answer (assigned users)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with create_session() as session:
                waiting = session.scalars(
                    select(TaskInstance).where(
                        TaskInstance.dag_id == DAG_ID,
                        TaskInstance.task_id == "decide",
                        TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                    )
                ).first()
                if waiting is not None:
                    self.body = session.scalar(select(HITLDetail.body).where(HITLDetail.ti_id == waiting.id))
                    if self.before is not None:
                        self.before()
                    answer = UpdateHITLDetailPayload(chosen_options=[self.option], params_input={"reason": self.reason})
                    for someone in self.first:
                        try:
                            update_hitl_detail(DAG_ID, waiting.run_id, "decide", answer, AirflowUser(someone), session)  # type: ignore[arg-type]
                        except HTTPException as refusal:
                            session.rollback()
                            self.refused.append(refusal.status_code)
                    update_hitl_detail(DAG_ID, waiting.run_id, "decide", answer, AirflowUser(self.username), session)  # type: ignore[arg-type]
                    return
            time.sleep(0.5)
        raise TimeoutError("the decide task never waited for input")


class AirflowUser:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_id(self) -> str:
        return self.name

    def get_name(self) -> str:
        return self.name


def decided_run(respondent: Respondent) -> dict[str, str]:
    respondent.start()
    run = dagbag().get_dag(DAG_ID).test()
    respondent.join(10)
    assert respondent.error is None, respondent.error
    return {"run": str(run.state)} | {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def batches(url: str) -> list[tuple[int, str, str | None, int | None]]:
    engine = make_engine(url)
    with session_scope(engine) as session:
        rows = session.execute(
            select(IngestBatch.id, IngestBatch.outcome, IngestBatch.decided_by, ItemVersion.number)
            .outerjoin(ItemVersion, IngestBatch.version_id == ItemVersion.id)
            .order_by(IngestBatch.id)
        ).all()
    engine.dispose()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def test_a_release_in_airflow_publishes_the_batch_and_announces_it(quarantining: str) -> None:
    before = asset_events()
    respondent = Respondent("ops", "Release", "核对后确认：两条校验位错误为历史数据，先行发布")

    states = decided_run(respondent)

    assert states == {"run": "success", "ingest": "success", "decide": "success"}, states
    assert respondent.body is not None and "公民身份号码" in respondent.body and "/runs/" in respondent.body
    assert "rows 244, 518" in respondent.body and "440307" not in respondent.body  # row numbers, never a value
    released = [row for row in batches(quarantining) if row[1] == "released"]
    assert len(released) == 1 and released[0][2] == "user:ops" and released[0][3] == 2
    assert new_events(before) == {f"datashare://items/{POPULATION}": 1}
    extra = latest_event_extra(POPULATION)
    assert (extra["item"], extra["version"], extra["batch"]) == (POPULATION, 2, released[0][0]) and extra["rows"] > 0
    engine = make_engine(quarantining)
    with session_scope(engine) as session:
        audited = session.scalars(select(AuditEvent.principal).where(AuditEvent.action == "quarantine.release")).all()
    engine.dispose()
    assert audited == ["user:ops"]

    announce = dagbag().get_dag("announce_releases").test()  # announced once: the announce DAG finds nothing
    assert {ti.task_id: str(ti.state) for ti in announce.get_task_instances()} == {"announce": "skipped"}


def test_a_discard_in_airflow_keeps_the_current_version(quarantining: str) -> None:
    before = asset_events()

    states = decided_run(Respondent("ops", "Discard", "导出文件有误，已通知公安局重新导出"))

    assert states == {"run": "success", "ingest": "success", "decide": "success"}, states
    assert [row[1] for row in batches(quarantining)] == ["published", "discarded"]
    assert new_events(before) == {}


def test_only_the_named_deciders_may_answer(quarantining: str) -> None:
    respondent = Respondent("ops", "Discard", "导出有误", first=("psga-steward", "admin"))

    states = decided_run(respondent)

    assert respondent.refused == [403, 403]  # Airflow itself refuses who is not among DATASHARE_QUARANTINE_DECIDERS
    assert states["decide"] == "success" and [row[1] for row in batches(quarantining)] == ["published", "discarded"]


def test_a_decider_who_may_not_operate_runs_leaves_the_batch_quarantined(
    platform: str,  # noqa: F811
    samples_dir: Path,
    tmp_path: Path,
    airflow_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from catalog.settings import get_settings

    monkeypatch.setenv("DATASHARE_QUARANTINE_DECIDERS", '["ops", "admin"]')  # admin: a platform admin, not ops
    get_settings.cache_clear()
    publish_then_drop_a_faulty_export(platform, samples_dir, tmp_path)

    states = decided_run(Respondent("admin", "Release", "管理员直接放行"))

    assert states["decide"] == "failed" and states["run"] in ("failed", "DagRunState.FAILED"), states
    assert [row[1] for row in batches(platform)] == ["published", "quarantined"]
    engine = make_engine(platform)
    with session_scope(engine) as session:
        refused = session.execute(
            select(AuditEvent.principal, AuditEvent.outcome).where(AuditEvent.action == "quarantine.release")
        ).all()
    engine.dispose()
    assert [tuple(row) for row in refused] == [("airflow:admin", "denied")]


def test_a_decision_applies_only_to_the_batch_its_own_run_quarantined(quarantining: str) -> None:
    from catalog.ingest.quarantine import BatchNotFound
    from catalog.ingest.runner import pull_and_ingest
    from catalog.ingest.task import apply_decision
    from catalog.settings import get_settings

    engine = make_engine(quarantining)
    assert pull_and_ingest(engine, get_settings(), POPULATION, "cli:tester").outcome == "quarantined"  # type: ignore[union-attr]
    with pytest.raises(BatchNotFound):  # a run that quarantined nothing cannot decide on another's batch
        apply_decision(engine, POPULATION, "airflow:ingest_psga_rk_0001/another_run", True, "换一个批次", "ops")
    engine.dispose()
    assert [row[1] for row in batches(quarantining)] == ["published", "quarantined"]


def test_declared_and_exported_text_shows_as_text_in_the_required_action() -> None:
    from catalog.ingest.task import _markdown_text

    shown = _markdown_text("人口库 [报告](http://evil.example/x) ![t](https://t.example/p.png) <b>*粗*</b>")
    assert "](" not in shown.replace("\\]\\(", "") and "http:" not in shown and "<b>" not in shown


def test_a_batch_released_meanwhile_through_the_api_is_left_alone_and_announced_once(quarantining: str) -> None:
    def released_elsewhere() -> None:
        engine = make_engine(quarantining)
        with session_scope(engine) as session:
            quarantined = session.scalar(select(IngestBatch.id).where(IngestBatch.outcome == "quarantined"))
            assert quarantined is not None
            release_batch(session, quarantined, "user:ops", "已在平台上放行")
        engine.dispose()

    before = asset_events()
    states = decided_run(Respondent("ops", "Discard", "晚了一步", before=released_elsewhere))

    assert states["decide"] == "success", states
    assert [row[1] for row in batches(quarantining)] == ["published", "released"]  # not discarded afterwards
    assert new_events(before) == {}
    announce = dagbag().get_dag("announce_releases").test()
    assert {ti.task_id: str(ti.state) for ti in announce.get_task_instances()} == {"announce": "success"}
    assert new_events(before) == {f"datashare://items/{POPULATION}": 1}
    assert latest_event_extra(POPULATION)["version"] == 2
    again = dagbag().get_dag("announce_releases").test()
    assert {ti.task_id: str(ti.state) for ti in again.get_task_instances()} == {"announce": "skipped"}
