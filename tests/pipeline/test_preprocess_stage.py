"""The Preprocess stage when every file is rejected: the run fails with one clear line, and the
manifest is still written (data/output/manifest.csv, where the README says the reasons are),
so the console's Data screen lists each file and why; nothing looks done (no stamp)."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from kwsops.config import AudioSettings
from kwsops.pipeline.preprocess import preprocess_stage
from kwsops.stamps import STAMP_NAME
from tests.helpers.tui import SIZE, cells, make_app, run_async, wait_for


@pytest.fixture
def rejected_only(tmp_path, new_workspace):
    ws = new_workspace(tmp_path / "ws")
    (ws.input_dir / "catch").mkdir(parents=True)
    (ws.input_dir / "catch" / "text__file.wav").write_text("this is not audio\n")
    (ws.input_dir / "gun").mkdir()
    (ws.input_dir / "gun" / "zero__bytes.wav").write_bytes(b"")
    with pytest.raises(ValueError, match=r"^none of the 2 files in .* could be used") as caught:
        preprocess_stage(ws, "key", AudioSettings(), workers=1)
    assert "each reason is in data/output/manifest.csv" in str(caught.value)
    assert "\n" not in str(caught.value)
    return ws


def test_every_file_rejected_still_writes_the_manifest_and_no_stamp(rejected_only):
    ws = rejected_only
    manifest = (ws.output_dir / "manifest.csv").read_text()
    assert "catch/text__file.wav" in manifest and "gun/zero__bytes.wav" in manifest
    assert not (ws.output_dir / STAMP_NAME).exists()
    assert not [p for p in ws.data_dir.iterdir() if p.name.startswith(".")]  # no temp folder


@run_async
async def test_the_data_screen_lists_why_every_file_was_rejected(rejected_only):
    app = make_app(rejected_only.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await wait_for(pilot, lambda: app.screen.summary is not None)
        title = str(app.screen.query_one("#data-title").render())
        assert "0 kept · 2 rejected" in title and "No manifest yet" not in title
        table = app.screen.query_one("#rejected", DataTable)
        sources = {cells(table, i)[0] for i in range(table.row_count)}
        assert sources == {"catch/text__file.wav", "gun/zero__bytes.wav"}
