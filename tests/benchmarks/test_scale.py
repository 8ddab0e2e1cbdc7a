"""benchmarks/scale.py end to end at a tiny size: the real stages, every row measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA_STAGES = ("VersionInput", "Preprocess", "VersionOutput", "MakeSpectrograms",
               "VersionSpectrograms")  # fmt: skip

pytestmark = pytest.mark.slow


def test_scale_benchmark_measures_every_data_stage(demo_source: Path, tmp_path: Path) -> None:
    figures, ws = tmp_path / "scale.json", tmp_path / "ws"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "scale.py"), "--clips", "60", "--stages",
         "data", "--seeds", str(demo_source), "--workspace", str(ws), "--keep",
         "--json", str(figures)],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    result = json.loads(figures.read_text())
    assert [row["stage"] for row in result["stages"]] == list(DATA_STAGES)
    for row in result["stages"]:
        for key in ("wall_s", "clips_per_s", "cpu_s", "peak_rss_tree_mib", "peak_rss_process_mib"):
            assert row[key] > 0, (row["stage"], key)
        assert row["disk"]["input"] > 0 and row["disk"]["dvc_cache"] > 0
    for stage in DATA_STAGES:  # the printed table has a row per stage, piped: not cut
        assert stage in proc.stdout
    assert result["input"]["clips"] == 60 and result["input"]["speakers"] >= 2
    wavs = sorted((ws / "data" / "input").rglob("*_nohash_*.wav"))
    # the seeds' folders: the six words and _unknown_ (the demo's unknown speech)
    assert len(wavs) == 60 and len({p.parent.name for p in wavs}) == 7
    manifest = (ws / "data" / "output" / "manifest.csv").read_text()
    # every generated clip is a usable recording (a sentence gives several clips, one row
    # each); beside them Preprocess's _silence_ clips
    kept = {line.split(",")[0] for line in manifest.splitlines() if ",kept," in line}
    assert len({source for source in kept if not source.startswith("_silence_/")}) == 60
    disk = result["stages"][-1]["disk"]
    if result["cache_type"].split(",")[0] in ("hardlink", "reflink"):  # one copy, not two
        assert disk["workspace_and_cache"] <= 1.1 * (
            disk["input"] + disk["output"] + disk["spec_ds"]
        )
    assert result["train"] is None
