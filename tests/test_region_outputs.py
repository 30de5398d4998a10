"""A region-attention model's outputs end to end: engines, FrameResult, hidden AUs, frames.csv, the
AU panel; and the driver state reading the engine's jaw drop (AU26) only while the mouth is seen."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from driver_monitor.config import Config, load_config
from driver_monitor.engine.base import Engine
from driver_monitor.model.regions import AU_REGIONS, REGIONS
from driver_monitor.monitor.monitor import DriverMonitor
from driver_monitor.monitor.hidden import hidden_aus
from driver_monitor.types import EngineReading
from tests.pipelines import make_pipeline
from driver_monitor.preprocess import AUS, EMOTIONS, InputSpec
from driver_monitor.recording import ResultWriter, frame_columns
from driver_monitor.types import EngineOutput, Frame, Signals
from tests.test_pipeline import ScriptedDetector, real_face  # noqa: F401  (fixture)

pytest.importorskip("onnxruntime")


class RegionEngine(Engine):
    """A region model stand-in: the mouth's visibility follows ``mouth_vis`` (one value per call)."""

    name, device, precision = "fake-regions", "cpu", "fp32"

    def __init__(self, mouth_vis) -> None:
        super().__init__(InputSpec(), EMOTIONS, AUS, max_batch=8, region_names=REGIONS, au_regions=AU_REGIONS)
        self.mouth_vis = list(mouth_vis)

    def _run(self, x):
        n = x.shape[0]
        p = np.full((n, len(EMOTIONS)), 1 / len(EMOTIONS), np.float32)
        a = np.full((n, len(AUS)), 0.5, np.float32)
        att = np.tile(np.linspace(0.9, 0.4, len(REGIONS), dtype=np.float32), (n, 1))
        vis = np.full((n, len(REGIONS)), 0.95, np.float32)
        vis[:, REGIONS.index("mouth")] = self.mouth_vis.pop(0)
        return p, a, att, vis


# --------------------------------------------------------------------------- hidden AUs


def test_an_au_is_hidden_only_when_every_region_it_is_read_from_is_hidden():
    vis = {r: 0.9 for r in REGIONS}
    assert hidden_aus(AUS, AU_REGIONS, vis, 0.5) == ()
    vis["mouth"] = 0.1  # a mask: the mouth AUs are hidden, the brows and eyes are not
    hidden = hidden_aus(AUS, AU_REGIONS, vis, 0.5)
    assert set(hidden) == {au for au in AUS if AU_REGIONS.get(au) == ("mouth",)} and "AU12" in hidden
    assert "AU1" not in hidden and "AU45" not in hidden
    vis["eyes"] = 0.2  # sunglasses too: AU6 is still read from the cheeks
    hidden = hidden_aus(AUS, AU_REGIONS, vis, 0.5)
    assert "AU45" in hidden and "AU6" not in hidden
    vis["left_cheek"] = vis["right_cheek"] = 0.3
    assert "AU6" in hidden_aus(AUS, AU_REGIONS, vis, 0.5)
    assert hidden_aus(AUS, {}, {r: 0.0 for r in REGIONS}, 0.5) == ()  # no map: nothing can be hidden


def test_engine_output_region_arrays_come_with_their_names():
    p, a = np.zeros((2, 8), np.float32), np.zeros((2, 13), np.float32)
    r = np.zeros((2, 6), np.float32)
    out = EngineOutput(p, a, EMOTIONS, AUS, REGIONS, r, r)
    assert out.region_visibility.shape == (2, 6)
    with pytest.raises(ValueError, match="exactly when region_names"):
        EngineOutput(p, a, EMOTIONS, AUS, (), r, r)
    with pytest.raises(ValueError, match="exactly when region_names"):
        EngineOutput(p, a, EMOTIONS, AUS, REGIONS)
    with pytest.raises(ValueError, match=r"\(2, 6\)"):
        EngineOutput(p, a, EMOTIONS, AUS, REGIONS, r[:, :5], r)


# --------------------------------------------------------------------------- real engines


@pytest.fixture(scope="module")
def region_model(tmp_path_factory):
    from tests.test_engine_model import export_tiny_regions

    path, net = export_tiny_regions(tmp_path_factory.mktemp("ra") / "ra.onnx", seed=7)
    return path, net


def _crops(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48), dtype=np.uint8)


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_engines_return_the_region_outputs_of_the_network(region_model, backend):
    import torch

    from driver_monitor.model_contract import read_model_info
    from driver_monitor.preprocess import to_input

    path, net = region_model
    info = read_model_info(path)
    if backend == "onnxruntime":
        from driver_monitor.engine.onnxruntime_backend import open_engine
    else:
        from driver_monitor.engine.torch_backend import open_engine
    crops = _crops(10)
    with open_engine(info, device="cpu", max_batch=4) as eng:  # runs of 4, 4 and 2
        assert eng.region_names == REGIONS and eng.au_regions["AU12"] == ("mouth",)
        out = eng.infer(crops)
    with torch.no_grad():
        ref = [t.numpy() for t in net.forward_regions(torch.from_numpy(to_input(crops)))]
    assert out.region_names == REGIONS
    for got, want in zip((out.emotion_probs, out.aus, out.region_attention, out.region_visibility), ref):
        np.testing.assert_allclose(got, want, atol=1e-4)
    assert out.region_visibility.std() > 0.01  # depends on the crop: not a constant


def test_plain_engine_output_has_no_regions():
    from tests.test_pipeline import FakeEngine

    out = FakeEngine().infer(_crops(3))
    assert out.region_names == () and out.region_visibility is None and out.region_attention is None


def test_an_engine_that_returns_too_few_outputs_is_a_model_error():
    from driver_monitor.errors import ModelError

    class TwoOutputs(RegionEngine):
        def _run(self, x):
            return super()._run(x)[:2]

    with pytest.raises(ModelError, match="returned 2 outputs, expected 4"):
        TwoOutputs([0.9]).infer(_crops(1))


# --------------------------------------------------------------------------- pipeline, csv, panel


def _run_pipeline(img, face, mouth_vis, cfg=None):
    cfg = cfg or load_config(None, ["smoothing.prob_filter=none", "engine.rate_hz=0"])
    n = len(mouth_vis)
    with make_pipeline(cfg, RegionEngine(mouth_vis), detector=ScriptedDetector([[face]] * n)) as pipe:
        return pipe, [pipe.process(Frame(img, i, i / 30)) for i in range(n)]


def test_pipeline_reports_regions_and_hides_the_mouth_aus_behind_a_mask(real_face):  # noqa: F811
    img, face = real_face
    pipe, results = _run_pipeline(img, face, [0.9, 0.9, 0.1, 0.1])
    assert pipe.region_names == REGIONS
    seen, masked = results[1], results[3]
    assert seen.regions["mouth"] == pytest.approx(0.9) and seen.aus_hidden == ()
    assert seen.region_attention["eyes"] == pytest.approx(0.9)
    assert masked.regions["mouth"] == pytest.approx(0.1)
    assert "AU12" in masked.aus_hidden and "AU26" in masked.aus_hidden and "AU45" not in masked.aus_hidden
    assert masked.aus["AU12"] == pytest.approx(0.5)  # the value is kept (and marked), not dropped


def test_visibility_is_smoothed_like_the_other_engine_outputs(real_face):  # noqa: F811
    img, face = real_face
    _, results = _run_pipeline(img, face, [0.9, 0.1], cfg=load_config(None, ["engine.rate_hz=0"]))
    assert 0.1 < results[1].regions["mouth"] < 0.9  # one frame of a hand does not flip it at once


def test_driver_state_does_not_read_a_hidden_jaw_drop():
    reading = EngineReading(aus={"AU26": 0.8, "AU45": 0.1}, aus_hidden=("AU26",))
    assert reading.visible_aus() == {"AU45": 0.1}
    assert EngineReading(aus={"AU26": 0.8}).visible_aus() == {"AU26": 0.8}
    assert EngineReading().visible_aus() is None


def test_driver_state_learns_the_jaw_baseline_from_the_engines_au26():
    """The engine names its AUs 'AU26': the driver state must find it under that name."""
    mon = DriverMonitor(Config())
    sig = Signals(0.3, 0.3, 0.3, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0, True)
    for i in range(300):
        mon.update(i / 30, sig, camera_ok=True, frame_index=i, aus={name: 0.12 for name in AUS})
    assert mon.calibrator.result.jaw_baseline == pytest.approx(0.12, abs=0.02)


def test_frames_csv_has_region_columns_only_for_a_region_model(real_face, tmp_path):  # noqa: F811
    assert not any(c.startswith(("vis_", "att_")) or c == "aus_hidden" for c in frame_columns(EMOTIONS, AUS))
    cols = frame_columns(EMOTIONS, AUS, REGIONS)
    assert {"vis_mouth", "att_eyes", "aus_hidden"} <= set(cols)
    img, face = real_face
    _, results = _run_pipeline(img, face, [0.9, 0.1])
    w = ResultWriter(tmp_path, Config(), emotion_names=EMOTIONS, au_names=AUS, region_names=REGIONS)
    for r in results:
        w.write(r)
    w.close({})
    rows = list(csv.DictReader(Path(tmp_path, "frames.csv").open()))
    assert rows[0]["aus_hidden"] == "" and float(rows[0]["vis_mouth"]) == pytest.approx(0.9)
    assert "au12" in rows[1]["aus_hidden"].split() and float(rows[1]["vis_mouth"]) == pytest.approx(0.1)
    assert float(rows[1]["att_face"]) == pytest.approx(0.4)


def test_au_panel_greys_out_hidden_aus(real_face):  # noqa: F811
    pytest.importorskip("PyQt6")
    from PyQt6.QtWidgets import QApplication

    from driver_monitor.ui.panels import AUPanel

    app = QApplication.instance() or QApplication([])  # noqa: F841
    img, face = real_face
    _, results = _run_pipeline(img, face, [0.9, 0.1, 0.9])
    panel = AUPanel(AUS)
    panel.show_result(results[1])
    assert not panel.bars["AU12"].isEnabled() and not panel.labels["AU12"].isEnabled()
    assert panel.bars["AU12"].format().endswith("hidden") and panel.bars["AU45"].isEnabled()
    assert "hidden: mouth" in panel.regions_label.text() and "based mostly on: eyes" in panel.regions_label.text()
    assert "AU12" not in panel.headline.text()
    panel.show_result(results[2])  # the hand is gone
    assert panel.bars["AU12"].isEnabled() and panel.labels["AU12"].isEnabled()
    assert not panel.bars["AU12"].format().endswith("hidden")


def test_visibility_report_summarises_analyze_folders(real_face, tmp_path, capsys):  # noqa: F811
    from tools import visibility_report as tool

    img, face = real_face
    _, results = _run_pipeline(img, face, [0.9, 0.1, 0.1, 0.9])
    w = ResultWriter(tmp_path / "drive", Config(), emotion_names=EMOTIONS, au_names=AUS, region_names=REGIONS)
    for r in results:
        w.write(r)
    w.close({})
    assert tool.main([str(tmp_path / "drive"), "--json", str(tmp_path / "v.json")]) == 0
    (res,) = __import__("json").loads((tmp_path / "v.json").read_text())
    assert res["frames"] == 4 and res["regions"]["mouth"]["hidden_share"] == 0.5
    assert res["regions"]["eyes"]["hidden_share"] == 0 and res["aus_hidden"]["au12"] == 0.5
    assert "| drive | 4 |" in capsys.readouterr().out
    plain = tmp_path / "plain"
    w = ResultWriter(plain, Config(), emotion_names=EMOTIONS, au_names=AUS)
    w.write(results[0])
    w.close({})
    assert tool.main([str(plain)]) != 0
    assert "no vis_* columns" in capsys.readouterr().err
    empty = tmp_path / "no_face"  # a region model's drive without a face: a row of its own, no error
    w = ResultWriter(empty, Config(), emotion_names=EMOTIONS, au_names=AUS, region_names=REGIONS)
    w.close({})
    assert tool.main([str(empty), str(tmp_path / "drive")]) == 0
    assert "| no_face | 0 |" in capsys.readouterr().out


def test_a_hidden_region_shows_again_only_clearly_above_the_threshold():
    from driver_monitor.monitor.hidden import REGION_HYSTERESIS, hidden_regions

    thr = 0.8
    assert hidden_regions({"eyes": 0.79, "mouth": 0.95}, thr) == {"eyes"}
    assert hidden_regions({"eyes": 0.82}, thr, {"eyes"}) == {"eyes"}  # hovering: stays hidden
    assert hidden_regions({"eyes": thr + REGION_HYSTERESIS + 0.01}, thr, {"eyes"}) == frozenset()
    assert hidden_regions({"eyes": 0.82}, thr) == frozenset()  # was seen: seen while above the threshold
    vis = {r: 0.95 for r in REGIONS}
    vis["mouth"] = 0.82
    assert "AU12" in hidden_aus(AUS, AU_REGIONS, vis, thr, hidden_regions(vis, thr, {"mouth"}))
    assert "AU12" not in hidden_aus(AUS, AU_REGIONS, vis, thr, hidden_regions(vis, thr))


def test_pipeline_holds_a_hidden_region_through_a_near_threshold_reading(real_face):  # noqa: F811
    img, face = real_face
    _, results = _run_pipeline(img, face, [0.9, 0.1, 0.82, 0.82, 0.9])
    assert [bool(r.aus_hidden) for r in results] == [False, True, True, True, False]
    _, results = _run_pipeline(img, face, [0.9, 0.82, 0.82])
    assert not any(r.aus_hidden for r in results)


def test_the_panel_names_the_regions_the_pipeline_hides(real_face):  # noqa: F811
    """The regions line and the greyed AUs tell the same story, hysteresis included."""
    pytest.importorskip("PyQt6")
    from PyQt6.QtWidgets import QApplication

    from driver_monitor.ui.panels import AUPanel

    app = QApplication.instance() or QApplication([])  # noqa: F841
    img, face = real_face
    _, results = _run_pipeline(img, face, [0.9, 0.1, 0.82])
    assert results[2].regions_hidden == ("mouth",) and "AU12" in results[2].aus_hidden
    panel = AUPanel(AUS)
    panel.show_result(results[2])  # 0.82: above 0.8, still hidden until above 0.85
    assert "hidden: mouth" in panel.regions_label.text() and not panel.bars["AU12"].isEnabled()
