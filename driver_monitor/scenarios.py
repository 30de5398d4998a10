"""Scenario evaluation: score a drive's results against intervals a person marked.

A truth file (YAML, e.g. ``scenarios/shared_clips.yaml``) lists clips; each clip lists intervals
``[label, start_s, end_s, note]`` with an expected outcome. ``driver-monitor evaluate`` runs
``analyze`` on every clip (:func:`evaluate`, which imports the pipeline only when it runs) and
scores ``frames.csv`` / ``events.jsonl`` here; the scoring itself needs no Qt, MediaPipe or runtime.

Expectations, per interval (defaults by label from :func:`default_expectation`; an interval's
``expect`` / ``forbid`` replace them):

* ``{alert: drowsiness|distraction, level: warning|critical, within_s: S}``: the alert column of
  frames.csv reaches the level no later than S after the interval starts (or was already up when
  it started, or rose in the 0.5 s marking tolerance before it);
* ``{event: TYPE, level: ..., within_s: S}``: an event of that type (e.g. ``yawn``,
  ``driver_absent``, ``eyes_not_visible``, ``microsleep``) with at least that level overlaps the
  interval and is recognised no later than S after its start;
* ``forbid: [drowsiness, distraction, microsleep, ...]``: no such alert is raised (rises to warning
  or above) and no such event starts inside the interval: a false alert. An alert raised before
  the interval that is still up ``alerts.clear_after_s`` + the marking tolerance (1.5 s; for
  distraction also the time-sharing reset, 2 s) into it counts too: the driver is judged by it
  there (a drowsiness alarm that outlives the closure).

Latency is measured from the interval's start to the first frame that shows the outcome: the alert
column, the ``yawns`` counter, ``eyes_closed_s`` reaching ``microsleep_s``, the frame the driver
became absent in the ``alert`` column; for other events the event's start. False alerts per hour
are the forbidden alerts raised in ``attentive`` intervals divided by their length.
"""
from __future__ import annotations

import csv
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence


from .config import Config, read_yaml
from .errors import ConfigError

LABELS = ("attentive", "eyes_closed", "yawn", "looking_down", "looking_aside", "looking_up", "glances",
          "absent", "eyes_hidden", "phone", "no_phone")
ALERTS = ("drowsiness", "distraction")
LEVELS = {"none": 0, "warning": 1, "critical": 2}
MARK_TOLERANCE_S = 0.5  # how far a person's mark may be off the frame the state really began
#: a phone held at the ear, in the hand or in view is found within this long of its arrival there
#: (the phone-use issue's target); ``no_phone`` forbids a ``phone_use`` event
PHONE_WITHIN_S = 2.0


@dataclass(frozen=True)
class Expect:
    """One expected outcome: an alert (column) or an event (type) at ``level`` within ``within_s``."""

    kind: str           # "alert" | "event"
    type: str
    level: str = "warning"
    within_s: float = 0.0

    def describe(self) -> str:
        lvl = "" if self.level == "none" else f" >= {self.level}"
        return f"{self.type}{lvl} within {self.within_s:g} s"


@dataclass(frozen=True)
class Interval:
    label: str
    start_s: float
    end_s: float
    note: str = ""
    expect: tuple[Expect, ...] = ()
    forbid: tuple[str, ...] = ()
    where: str = field(default="", compare=False)  # "shared_clips.yaml clip 'x' interval 2", for errors

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def describe(self) -> str:
        return f"{self.where} ({self.label} {self.start_s:g}-{self.end_s:g} s)"


@dataclass(frozen=True)
class Clip:
    name: str
    video: Path
    intervals: tuple[Interval, ...]
    overrides: tuple[str, ...] = ()
    note: str = ""


# --------------------------------------------------------------------------- truth file

def default_expectation(label: str, start_s: float, end_s: float, cfg: Config
                        ) -> tuple[tuple[Expect, ...], tuple[str, ...]]:
    """What a label asks for by default (documented in docs/dms_eval.md)."""
    d, x, a = cfg.drowsiness, cfg.distraction, cfg.alerts
    dur = end_s - start_s
    tol = MARK_TOLERANCE_S
    if label == "attentive":
        return (), ALERTS
    if label == "eyes_closed":
        if dur + 1e-9 >= d.microsleep_s + a.raise_after_s:  # long enough for the alert to be raised
            return (Expect("alert", "drowsiness", "warning", d.microsleep_s + a.raise_after_s + tol),), ()
        if dur + 1e-9 >= d.microsleep_s:
            return (Expect("event", "microsleep", "warning", d.microsleep_s + tol),), ()
        return (), ("drowsiness", "microsleep")
    if label == "yawn":
        return (Expect("event", "yawn", "none", d.yawn_min_s + tol),), ()
    if label in ("looking_down", "looking_aside"):
        forbid: tuple[str, ...] = ("drowsiness", "microsleep")  # no sleep alert while looking away
        if dur + 1e-9 >= x.warning_s + a.raise_after_s:
            return (Expect("alert", "distraction", "warning", x.warning_s + a.raise_after_s + tol),), forbid
        if dur < x.warning_s - tol:
            forbid += ("distraction",)  # clearly shorter than a long distraction
        return (), forbid
    if label == "looking_up":
        return (), ("drowsiness", "microsleep")
    if label == "glances":  # repeated short glances: when time-sharing is due depends on the marks,
        return (), ("drowsiness", "microsleep")  # so the interval gives its own expect
    if label == "absent":
        return (Expect("event", "driver_absent", "warning", a.driver_absent_s + tol),), ()
    if label == "eyes_hidden":
        return (Expect("event", "eyes_not_visible", "none", a.eyes_not_visible_s + tol),), ("microsleep",)
    if label == "phone":
        return (Expect("event", "phone_use", "none", PHONE_WITHIN_S),), ()
    if label == "no_phone":
        return (), ("phone_use",)
    raise ValueError(label)


def _err(where: str, msg: str) -> ConfigError:
    return ConfigError(f"truth file {where}: {msg}")


def _parse_expect(raw: Any, where: str) -> Expect:
    if not isinstance(raw, Mapping):
        raise _err(where, f"expect entries are mappings like {{alert: distraction, level: warning, within_s: 4}}, "
                          f"got {raw!r}")
    kinds = [k for k in ("alert", "event") if k in raw]
    if len(kinds) != 1:
        raise _err(where, "each expect entry names exactly one of alert: or event:")
    kind = kinds[0]
    typ = str(raw[kind])
    if kind == "alert" and typ not in ALERTS:
        raise _err(where, f"alert {typ!r} is not one of {', '.join(ALERTS)}")
    level = str(raw.get("level", "warning" if kind == "alert" else "none"))
    if level not in LEVELS:
        raise _err(where, f"level {level!r} is not one of {', '.join(LEVELS)}")
    try:
        within = float(raw["within_s"])
    except (KeyError, TypeError, ValueError):
        raise _err(where, "each expect entry needs within_s (seconds after the interval starts)") from None
    unknown = set(raw) - {kind, "level", "within_s"}
    if unknown:
        raise _err(where, f"unknown key(s) {sorted(unknown)} in expect")
    return Expect(kind, typ, level, within)


def _parse_interval(raw: Any, where: str, cfg: Config) -> Interval:
    expect = forbid = None
    if isinstance(raw, (list, tuple)):
        if len(raw) not in (3, 4):
            raise _err(where, f"an interval is [label, start_s, end_s] or [label, start_s, end_s, note], got {raw!r}")
        label, start, end = raw[0], raw[1], raw[2]
        note = raw[3] if len(raw) == 4 else ""
    elif isinstance(raw, Mapping):
        unknown = set(raw) - {"label", "start_s", "end_s", "note", "expect", "forbid"}
        if unknown:
            raise _err(where, f"unknown key(s) {sorted(unknown)}; allowed: label, start_s, end_s, note, expect, forbid")
        label, start, end, note = raw.get("label"), raw.get("start_s"), raw.get("end_s"), raw.get("note", "")
        if "expect" in raw:
            items = raw["expect"] if isinstance(raw["expect"], list) else [raw["expect"]]
            expect = tuple(_parse_expect(e, where) for e in items if e not in (None, "none"))
        if "forbid" in raw:
            forbid = tuple(str(f) for f in (raw["forbid"] or []))
    else:
        raise _err(where, f"an interval is a list or a mapping, got {raw!r}")
    if label not in LABELS:
        raise _err(where, f"label {label!r} is not one of {', '.join(LABELS)}")
    try:
        start, end = float(start), float(end)
    except (TypeError, ValueError):
        raise _err(where, f"start_s and end_s must be numbers, got {start!r} and {end!r}") from None
    if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end):
        raise _err(where, f"needs 0 <= start_s < end_s, got {start} .. {end}")
    d_expect, d_forbid = default_expectation(str(label), start, end, cfg)
    return Interval(str(label), start, end, str(note or ""), d_expect if expect is None else expect,
                    d_forbid if forbid is None else forbid, where)


def refuse_contradictions(intervals: Sequence[Interval]) -> None:
    """Two intervals of a clip that overlap, one expecting what the other forbids (eyes closed long
    enough for a drowsiness alert inside attentive driving, phone inside no_phone), cannot both be
    met: a ConfigError naming both entries."""
    for a in intervals:
        for b in intervals:
            overlap = min(a.end_s, b.end_s) - max(a.start_s, b.start_s)
            clash = next((e for e in a.expect if e.type in b.forbid), None)
            if a is not b and overlap > 1e-6 and clash is not None:
                raise ConfigError(f"truth file {a.describe()} expects {clash.describe()}, but {b.describe()} "
                                  f"overlaps it by {overlap:.2f} s and forbids {clash.type}; a moment cannot be "
                                  f"both: correct one of the two marks")


def refuse_past_end(clip: Clip, end_s: float, what: str) -> None:
    """An interval that ends past the clip (beyond the marking tolerance) would count time with no
    frames (inflating attentive driving, so deflating false alerts per hour): a ConfigError naming
    the entry. ``end_s``: where the clip's last frame ends; ``what`` says how that is known."""
    for iv in clip.intervals:
        if iv.end_s > end_s + MARK_TOLERANCE_S:
            raise ConfigError(f"truth file {iv.describe()} ends past the clip: {clip.video.name} ends at "
                              f"{end_s:.2f} s ({what}); mark it within the clip, or check that the clip's video "
                              f"is the right file")


def load_truth(path: str | Path, cfg_for: Any, video_dir: str | Path | None = None) -> list[Clip]:
    """Read a truth file. ``cfg_for(overrides) -> Config`` checks each clip's overrides. The default
    expectations come from the project's default thresholds (the field's figures: a closure of
    1 s is a microsleep, 3.5 s off the road a long distraction), not from the config under test, so
    a config that misses them fails. Errors name the file, the clip and the interval."""
    p = Path(path)
    data = read_yaml(p, "truth file", "pass the YAML file that lists your clips (see scenarios/shared_clips.yaml)")
    if not isinstance(data, Mapping) or not isinstance(data.get("clips"), list) or not data["clips"]:
        raise ConfigError(f"truth file {str(p)!r}: expected a mapping with a non-empty 'clips' list")
    base = Path(video_dir) if video_dir is not None else (p.parent / str(data.get("video_dir", ".")))
    clips: list[Clip] = []
    names: set[str] = set()
    for i, c in enumerate(data["clips"]):
        where = f"{p.name} clip {i + 1}"
        if not isinstance(c, Mapping) or "video" not in c:
            raise _err(where, "each clip is a mapping with at least video: and intervals:")
        name = str(c.get("name") or Path(str(c["video"])).stem)
        where = f"{p.name} clip {name!r}"
        if name in names:
            raise _err(where, "clip names must be unique (they name the results folders)")
        names.add(name)
        overrides = c.get("set") or []
        if isinstance(overrides, str):
            overrides = [overrides]
        overrides = tuple(str(o) for o in overrides)
        cfg_for(overrides)  # a bad override fails here, naming the key
        cfg = Config()
        raw_iv = c.get("intervals")
        if not isinstance(raw_iv, list) or not raw_iv:
            raise _err(where, "needs a non-empty intervals: list")
        intervals = tuple(_parse_interval(r, f"{where} interval {j + 1}", cfg) for j, r in enumerate(raw_iv))
        refuse_contradictions(intervals)
        video = Path(str(c["video"]))
        clips.append(Clip(name, video if video.is_absolute() else base / video, intervals, overrides,
                          str(c.get("note", "") or "").strip()))
    return clips


# --------------------------------------------------------------------------- results of one clip

@dataclass
class Results:
    """frames.csv rows and events of one analysed clip."""

    t: list[float]
    rows: list[dict[str, str]]
    events: list[dict[str, Any]]

    @classmethod
    def read(cls, folder: str | Path) -> "Results":
        folder = Path(folder)
        with open(folder / "frames.csv", newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        events = [json.loads(line) for line in (folder / "events.jsonl").read_text(encoding="utf-8").splitlines()
                  if line.strip()]
        return cls([float(r["time_s"]) for r in rows], rows, events)

    @property
    def end_s(self) -> float:
        """Where the last frame analysed ends (its time plus one frame's step); 0 with no frame."""
        if not self.t:
            return 0.0
        step = (self.t[-1] - self.t[0]) / (len(self.t) - 1) if len(self.t) > 1 else 0.0
        return self.t[-1] + step

    def level(self, i: int, column: str) -> int:
        return LEVELS.get(self.rows[i].get(column, "none") or "none", 0)

    def num(self, i: int, column: str) -> float:
        v = self.rows[i].get(column, "")
        return float(v) if v not in ("", None) else math.nan

    def rises(self, column: str) -> list[float]:
        """Times the column went from below warning to warning or above."""
        out, prev = [], 0
        for i, t in enumerate(self.t):
            lvl = self.level(i, column)
            if lvl >= 1 > prev:
                out.append(t)
            prev = lvl
        return out


@dataclass
class Outcome:
    interval: Interval
    passed: bool
    detections: list[dict[str, Any]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    covered_s: float | None = None  # the part of the interval that has frames (None: all of it)


def _recognised_at(res: Results, exp: Expect, iv: Interval, cfg: Config) -> float | None:
    """First time the expected outcome shows, searched from the marking tolerance before the start
    to the end of the interval plus within_s (None if never)."""
    lo, hi = iv.start_s - MARK_TOLERANCE_S, max(iv.end_s, iv.start_s + exp.within_s) + 1e-6
    want = LEVELS[exp.level]
    idx = [i for i, t in enumerate(res.t) if lo <= t <= hi]
    if exp.kind == "alert":
        for i in idx:
            if res.level(i, exp.type) >= max(want, 1):
                return res.t[i]
        return None
    overlapping = [e for e in res.events if e.get("type") == exp.type and LEVELS.get(e.get("level", "none"), 0) >= want
                   and e.get("start_s", math.inf) <= iv.end_s + MARK_TOLERANCE_S
                   and (e.get("end_s") if e.get("end_s") is not None else math.inf) >= iv.start_s - MARK_TOLERANCE_S]
    if not overlapping:
        return None
    if exp.type == "yawn" and idx:
        base = res.num(idx[0], "yawns")
        for i in idx:
            if res.num(i, "yawns") > base:
                return res.t[i]
    if exp.type == "microsleep":
        for i in idx:
            if res.num(i, "eyes_closed_s") >= cfg.drowsiness.microsleep_s - 1e-3:
                return res.t[i]
    if exp.type == "driver_absent":
        for i in idx:
            if res.rows[i].get("face_detected") == "0" and res.level(i, "alert") >= 1:
                return res.t[i]
    return max(min(float(e["start_s"]) for e in overlapping), res.t[idx[0]] if idx else iv.start_s)


def held_grace_s(alert: str, cfg: Config) -> float:
    """How long an alert raised before an interval may take to clear inside it: the alerts'
    clearing hold and the marking tolerance; for distraction also the time-sharing account's reset
    (Euro NCAP: 2 s back on the road before the time-sharing warning ends)."""
    grace = cfg.alerts.clear_after_s + MARK_TOLERANCE_S
    if alert == "distraction":
        grace += cfg.distraction.time_sharing_reset_s
    return grace


def _held_into(res: Results, column: str, iv: Interval, grace_s: float) -> list[str]:
    """A forbidden alert raised before the interval that is still up ``grace_s`` into it (the
    alerts' own clearing hold plus the marking tolerance): the driver is judged by it there too."""
    inside = [i for i, t in enumerate(res.t) if iv.start_s <= t <= iv.end_s]
    if not inside or res.level(inside[0], column) < 1:
        return []
    for i in inside:
        if res.level(i, column) < 1:
            return []  # cleared before the grace ran out, or only later rose again (counted as a rise)
        if res.t[i] >= iv.start_s + grace_s - 1e-6:
            end = next((res.t[j] for j in inside if j > i and res.level(j, column) < 1), None)
            until = f"until {end:.2f} s" if end is not None else "to the interval's end"
            return [f"{column} raised before the interval, still up {until}"]
    return []


def score_clip(clip: Clip, res: Results, cfg: Config) -> list[Outcome]:
    outcomes = []
    rises = {col: res.rises(col) for col in ALERTS}
    for iv in clip.intervals:
        o = Outcome(iv, True, covered_s=max(0.0, min(iv.end_s, res.end_s) - iv.start_s))
        for exp in iv.expect:
            t = _recognised_at(res, exp, iv, cfg)
            latency = None if t is None else max(0.0, t - iv.start_s)
            ok = latency is not None and latency <= exp.within_s + 1e-6
            o.detections.append({"expect": exp.describe(), "detected": t is not None,
                                 "latency_s": None if latency is None else round(latency, 3), "ok": ok})
            o.passed &= ok
        for what in iv.forbid:
            if what in ALERTS:
                hits = [t for t in rises[what] if iv.start_s <= t <= iv.end_s]
                o.violations += _held_into(res, what, iv, held_grace_s(what, cfg))
            else:
                hits = [float(e["start_s"]) for e in res.events
                        if e.get("type") == what and iv.start_s <= float(e["start_s"]) <= iv.end_s]
            for t in hits:
                o.violations.append(f"{what} at {t:.2f} s")
        o.passed &= not o.violations
        outcomes.append(o)
    return outcomes


# --------------------------------------------------------------------------- report

def summarise(scored: Sequence[tuple[Clip, Sequence[Outcome]]]) -> dict[str, Any]:
    """Per scenario type (label): intervals, passed, detected / expected, latencies; false alerts
    per hour of attentive driving; every clip's outcomes."""
    by_label: dict[str, dict[str, Any]] = {}
    attentive_s = 0.0
    false_alerts = 0
    clips_out = []
    for clip, outcomes in scored:
        rows = []
        for o in outcomes:
            iv = o.interval
            s = by_label.setdefault(iv.label, {"intervals": 0, "passed": 0, "expected": 0, "detected": 0,
                                               "latencies_s": [], "violations": 0})
            s["intervals"] += 1
            s["passed"] += int(o.passed)
            s["expected"] += len(o.detections)
            s["detected"] += sum(1 for d in o.detections if d["ok"])
            s["latencies_s"] += [d["latency_s"] for d in o.detections if d["latency_s"] is not None]
            s["violations"] += len(o.violations)
            if iv.label == "attentive":  # only the time with frames counts
                attentive_s += iv.duration_s if o.covered_s is None else o.covered_s
                false_alerts += len(o.violations)
            rows.append({"label": iv.label, "start_s": iv.start_s, "end_s": iv.end_s, "note": iv.note,
                         "expect": [d["expect"] for d in o.detections] or [f"no {', '.join(iv.forbid)}"],
                         "detections": o.detections, "violations": o.violations, "passed": o.passed})
        clips_out.append({"name": clip.name, "video": str(clip.video), "set": list(clip.overrides),
                          "note": clip.note, "passed": all(o.passed for o in outcomes), "intervals": rows})
    for s in by_label.values():
        lat = s.pop("latencies_s")
        s["median_latency_s"] = round(statistics.median(lat), 3) if lat else None
        s["max_latency_s"] = round(max(lat), 3) if lat else None
    hours = attentive_s / 3600.0
    return {
        "passed": all(c["passed"] for c in clips_out),
        "scenarios": {k: by_label[k] for k in LABELS if k in by_label},
        "attentive_s": round(attentive_s, 2),
        "false_alerts_attentive": false_alerts,
        "false_alerts_per_hour": round(false_alerts / hours, 1) if hours > 0 else None,
        "clips": clips_out,
    }


def markdown(summary: Mapping[str, Any], command: str, truth: str, extra: Iterable[str] = ()) -> str:
    """The report as Markdown (docs/dms_eval.md)."""
    out = ["# Driver-state scenario evaluation", "",
           f"Truth file: `{truth}`. Produced by:", "", "```", command, "```", ""]
    if summary.get("note"):
        out += [str(summary["note"]), ""]
    out += list(extra)
    verdict = "every scenario passed" if summary["passed"] else "SOME SCENARIOS FAILED"
    out += [f"**Result: {verdict}.**", "", "## By scenario type", "",
            "| scenario | intervals | passed | detected / expected | median latency (s) | max latency (s) "
            "| false alerts |",
            "|---|---|---|---|---|---|---|"]
    for label, s in summary["scenarios"].items():
        def f(v: Any) -> str:
            return "-" if v is None else f"{v:.2f}"
        det = f"{s['detected']} / {s['expected']}" if s["expected"] else "-"
        out.append(f"| {label} | {s['intervals']} | {s['passed']} | {det} | {f(s['median_latency_s'])} | "
                   f"{f(s['max_latency_s'])} | {s['violations']} |")
    fph = summary["false_alerts_per_hour"]
    out += ["", f"Attentive driving marked: {summary['attentive_s']:.1f} s; false drowsiness / distraction "
                f"alerts raised in it: {summary['false_alerts_attentive']}"
                + ("" if fph is None else f" ({fph:g} per hour)") + ".", "", "## By clip", ""]
    for c in summary["clips"]:
        sets = f" (`--set {' '.join(c['set'])}`)" if c["set"] else ""
        out += [f"### {c['name']}{sets}: {'passed' if c['passed'] else 'FAILED'}", ""]
        if c["note"]:
            out += [c["note"], ""]
        out += ["| interval (s) | label | expected | outcome | |", "|---|---|---|---|---|"]
        for r in c["intervals"]:
            outcome = []
            for d in r["detections"]:
                outcome.append(f"{'detected' if d['detected'] else 'missed'}"
                               + ("" if d["latency_s"] is None else f" after {d['latency_s']:.2f} s"))
            outcome += [f"false: {v}" for v in r["violations"]]
            if not outcome:
                outcome = ["no alert"]
            note = f" ({r['note']})" if r["note"] else ""
            out.append(f"| {r['start_s']:.2f}-{r['end_s']:.2f} | {r['label']}{note} | {'; '.join(r['expect'])} | "
                       f"{'; '.join(outcome)} | {'ok' if r['passed'] else '**FAIL**'} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------- running

def evaluate(truth: str | Path, out_dir: str | Path, cfg_for: Any, *, video_dir: str | Path | None = None,
             reuse: bool = False, only: Sequence[str] = (), log: Any = print) -> dict[str, Any]:
    """Analyse every clip of the truth file into ``out_dir/<clip>/`` (``reuse``: score the results
    already there) and score them; writes ``dms_eval.json`` and ``dms_eval.md`` in ``out_dir`` and
    returns the summary. ``cfg_for(overrides) -> Config`` builds each clip's config."""
    from .runtime import Runtime, models_key

    clips = load_truth(truth, cfg_for, video_dir)
    if only:
        unknown = sorted(set(only) - {c.name for c in clips})
        if unknown:
            raise ConfigError(f"--clip {unknown[0]!r} is not in {truth}; clips: {', '.join(c.name for c in clips)}")
        clips = [c for c in clips if c.name in only]
    missing = [str(c.video) for c in clips if not c.video.is_file()]
    if missing:
        raise ConfigError(f"video {missing[0]!r} of the truth file does not exist; pass --video-dir DIR "
                          f"with the folder that holds the clips")
    _refuse_intervals_past_the_videos(clips, cfg_for)
    out = Path(out_dir)
    scored = []
    runtimes: list[Runtime] = []  # the models, opened once for the clips that share them
    try:
        for clip in clips:
            cfg = cfg_for(clip.overrides)
            runtime = next((r for r in runtimes if models_key(r.cfg) == models_key(cfg)), None)
            if runtime is None:
                runtime = Runtime(cfg, log=lambda m: None)
                runtimes.append(runtime)
            scored.append((clip, _run_clip(clip, out / clip.name, cfg, runtime, reuse, log)))
    finally:
        for runtime in runtimes:
            runtime.close()
    summary = summarise(scored)
    note = (read_yaml(truth, "truth file", "") or {}).get("note")
    if note:
        summary["note"] = str(note).strip()
    out.mkdir(parents=True, exist_ok=True)
    (out / "dms_eval.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _run_clip(clip: Clip, folder: Path, cfg: Any, runtime: Any, reuse: bool, log: Any) -> list[Any]:
    """Analyse one clip into ``folder`` over the run's models (``reuse``: the results already
    there), score it and say how it went; its outcomes."""
    from .analyze import analyze  # the running needs the pipeline; the scoring above does not

    if not (reuse and (folder / "frames.csv").is_file() and (folder / "events.jsonl").is_file()):
        summary = analyze(str(clip.video), folder, cfg, progress=False, runtime=runtime, log=lambda m: None)
        if not summary.get("complete", True):
            log(f"warning: {clip.name}: {summary.get('reason')}; scoring the frames analysed")
    res = Results.read(folder)
    _past_the_frames(clip, res, log)
    outcomes = score_clip(clip, res, cfg)
    failed = [o for o in outcomes if not o.passed]
    log(f"{clip.name}: {len(outcomes) - len(failed)}/{len(outcomes)} scenarios passed"
        + "".join(f"\n  FAILED {o.interval.label} {o.interval.start_s:.2f}-{o.interval.end_s:.2f} s: "
                  + "; ".join([f"{d['expect']}: " + ("missed" if not d["detected"] else
                                                     f"after {d['latency_s']:.2f} s")
                               for d in o.detections if not d["ok"]] + o.violations)
                  for o in failed))
    return outcomes


def _refuse_intervals_past_the_videos(clips: Sequence[Clip], cfg_for: Any) -> None:
    """Before anything is analysed: each clip's length from its video, on the time base analyze
    uses (the clip's own config: capture.fps, a stream that starts mid-way), refuses an interval
    past it (:func:`refuse_past_end`). A video that announces no frame count is checked after."""
    from .capture import open_source
    from .errors import SourceError

    for clip in clips:
        try:
            src = open_source(str(clip.video), cfg_for(clip.overrides).capture)
        except SourceError:
            continue  # analyze says what is wrong with it
        try:
            n, fps = src.frame_count, src.fps
        finally:
            src.close()
        if n:
            refuse_past_end(clip, n / fps, f"{n} frames at {fps:g} fps")


def _past_the_frames(clip: Clip, res: Results, log: Any) -> None:
    """After analysis: intervals that run past the frames analysed (a video shorter than it
    announced, a truncated one) are scored on the frames there are and said."""
    short = [iv for iv in clip.intervals if iv.end_s > res.end_s + MARK_TOLERANCE_S]
    if short:
        log(f"warning: {clip.name}: the frames analysed end at {res.end_s:.2f} s; "
            + ", ".join(iv.describe() for iv in short) + " is scored on the frames up to there only")

