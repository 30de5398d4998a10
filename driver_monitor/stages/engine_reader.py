"""The engine stage: emotions and action units of the driver's aligned face, at the engine's stride
and rate, smoothed over time, with the regions and AUs a region-attention model sees hidden."""
from __future__ import annotations

from dataclasses import replace

from ..config import EngineConfig, SmoothingConfig
from ..engine.base import Engine
from ..monitor.filters import ProbSmoother
from ..monitor.hidden import hidden_aus, hidden_regions
from ..types import AlignedFace, EngineReading


class EngineStage:
    """``read(aligned, t_s)``: the engine's smoothed outputs for this frame of the driver's face, or
    the last ones held (``engine.stride``, ``engine.rate_hz``); ``ran`` says which."""

    def __init__(self, cfg: EngineConfig, smoothing: SmoothingConfig, engine: Engine) -> None:
        self.cfg = cfg
        self.engine = engine
        self.probs = ProbSmoother(smoothing)
        self.aus = ProbSmoother(smoothing)
        self.regions = ProbSmoother(smoothing)
        self._held: EngineReading | None = None  # the last smoothed outputs
        self._since = 0                          # frames of the face since the engine last ran
        self._t: float | None = None             # video time of the engine's last run
        self.ran = False

    def read(self, aligned: AlignedFace, t_s: float) -> EngineReading:
        self.ran = self._held is None or self._due(t_s)
        if self.ran:
            self._held = self._run(aligned, t_s)
            self._since, self._t = 0, t_s
        else:  # this frame holds the last outputs
            self._since += 1
        return self._held

    def _due(self, t: float) -> bool:
        """Whether the engine reads this frame of a face: ``engine.stride`` frames and
        1 / ``engine.rate_hz`` s of video since it last did (a rewind reads at once)."""
        if self._since + 1 < self.cfg.stride:
            return False
        rate, last = self.cfg.rate_hz, self._t
        return rate <= 0 or last is None or t < last or t - last >= 1.0 / rate - 1e-6

    def face_gone(self) -> None:
        """The face left: the next one starts the smoothing afresh and is read at once."""
        self.probs.reset()
        self.aus.reset()
        self.regions.reset()
        self._held = None

    def frame_lost(self) -> None:
        """The camera gave no frame: the next face is read at once."""
        self._held = None

    def _run(self, aligned: AlignedFace, t_s: float) -> EngineReading:
        out = self.engine.infer(aligned.image[None])
        probs = self.probs.update(out.emotion_probs[0], t_s)
        aus = self.aus.update(out.aus[0], t_s)
        total = float(probs.sum())
        if total > 0:
            probs = probs / total
        reading = EngineReading(dict(zip(out.emotion_names, probs.tolist())), dict(zip(out.au_names, aus.tolist())))
        if out.region_visibility is None:
            return reading
        vis = self.regions.update(out.region_visibility[0], t_s)
        regions = dict(zip(out.region_names, vis.tolist()))
        threshold = self.cfg.min_region_visibility
        was = self._held.regions_hidden if self._held is not None else ()  # the last reading (hysteresis)
        gone = hidden_regions(regions, threshold, was)
        return replace(
            reading, regions=regions, region_attention=dict(zip(out.region_names, out.region_attention[0].tolist())),
            aus_hidden=hidden_aus(out.au_names, self.engine.au_regions, regions, threshold, gone),
            regions_hidden=tuple(r for r in out.region_names if r in gone))
