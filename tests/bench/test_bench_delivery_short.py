"""The delivery benchmark's short mode runs end to end against the real product, baseline and Redis.

Timings are not asserted (they depend on the machine); what is asserted is that both sides ran, counted real
deliveries, and that the product lost no message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import output_tail, run_script


@pytest.mark.integration
def test_short_delivery_bench_runs_both_targets_and_loses_nothing(tmp_path: Path) -> None:
    redis_db = os.environ.get("BRIDGE_BENCH_REDIS_DB", "15")
    done = run_script("bench/bench_delivery.py", "--short", "--out", str(tmp_path), "--redis-db", redis_db, timeout=240)
    assert done.returncode == 0, output_tail(done)

    result = json.loads((tmp_path / "delivery.json").read_text())
    runs = {(run["target"], run["clients"]): run for run in result["runs"]}
    assert set(runs) == {(target, n) for target in ("product", "baseline") for n in (10, 20)}
    for (target, clients), run in runs.items():
        assert run["messages"] > 0, (target, clients)
        assert run["expected"] == run["messages"] * (clients - 1)
        assert run["delivered"] > 0, (target, clients)
        assert run["duplicates"] == 0, (target, clients)
        assert run["p50_ms"] > 0
    for clients in (10, 20):
        product = runs[("product", clients)]
        assert product["delivered"] == product["expected"], f"product lost messages at N={clients}: {product}"
        # The product's /metrics, scraped during the run, saw the sockets and counted the messages.
        assert product["metrics_peak_sockets"] >= clients, product
        assert product["metrics_messages"] >= product["messages"] * 0.9, product
        assert product["acks"] == product["messages"] + round(
            result["parameters"]["rate"] * result["parameters"]["warmup"]
        )
        assert product["errors"] == {}
    assert (tmp_path / "delivery-short.md").is_file()
