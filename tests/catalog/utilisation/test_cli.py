"""`datashare usage`: the figures from the command line as a named user, with the API's rules (who may read which
figures, whom consumers are shown to), as JSON, CSV and text."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from catalog.db import make_engine, session_scope, utcnow
from catalog.settings import get_settings
from tests.catalog.utilisation.fixture import use


def test_the_figures_from_the_command_line(datashare: Any) -> None:
    datashare("demo")
    engine = make_engine(str(get_settings().database_url))
    with session_scope(engine) as session:
        use(session, utcnow(), "zsj", "data.read", "allowed", "PSGA-RK-0001", 12)
        use(session, utcnow(), "wjj", "data.read", "denied", "PSGA-RK-0001")
    engine.dispose()

    assert "folded" in datashare("usage", "fold").output
    found = json.loads(datashare("usage", "show", "--as", "officer", "--json").output)
    assert found["platform"]["uses"]["reads"] == 1 and found["platform"]["uses"]["rows_read"] == 12
    assert [c["department"] for c in found["top_items"][0]["consumers"]] == ["zsj"]
    as_ops = json.loads(datashare("usage", "show", "--as", "ops", "--json").output)
    assert as_ops["top_items"][0]["consumers"] == []  # ops may not know of subscriptions
    rows = list(csv.DictReader(io.StringIO(datashare("usage", "show", "--as", "officer", "--csv").output)))
    assert rows[0]["department"] == "*" and rows[0]["reads"] == "1"
    own = json.loads(datashare("usage", "show", "--as", "zsj-user", "--department", "zsj", "--json").output)
    assert own["figures"]["as_consumer"]["uses"]["rows_read"] == 12
    assert "may not read utilisation" in datashare("usage", "show", "--as", "zsj-user", expect=1).output
    refused = datashare("usage", "show", "--as", "zsj-user", "--department", "psga", expect=1).output
    assert "may not read utilisation for department psga" in refused
    text = datashare("usage", "show", "--as", "psga-steward", "--department", "psga").output
    assert "PSGA-RK-0001" in text and "zsj 1" in text
    history = json.loads(datashare("usage", "history", "--as", "zsj-user", "--department", "zsj", "--json").output)
    assert [entry["department"] for entry in history["departments"]] == ["zsj"]
    lines = {line.split()[0]: line.split()[1:] for line in
             datashare("usage", "history", "--as", "officer", "--months", "2").output.splitlines()}  # fmt: skip
    assert lines["psga"][0].endswith("=-") and lines["psga"][1].endswith("=100.0%")  # its one item, used this month
