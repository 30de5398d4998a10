"""The scenario evaluation: scoring rules on synthetic results, truth-file errors, and every
scenario of scenarios/shared_clips.yaml on the real clips (fails when one regresses)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from driver_monitor.cli import main
from driver_monitor.config import Config, load_config
from driver_monitor.errors import ConfigError
from driver_monitor.scenarios import (Clip, Expect, Interval, Results, default_expectation, load_truth,
                                       markdown, score_clip, summarise)
from tests.conftest import need_data

ROOT = Path(__file__).resolve().parent.parent
TRUTH = ROOT / "scenarios" / "shared_clips.yaml"
CFG = Config()
FPS = 10


def results(seconds: float, drowsiness=lambda t: "none", distraction=lambda t: "none", yawns=lambda t: 0,
            closed_s=lambda t: 0.0, face=lambda t: True, alert=None, events=()) -> Results:
    rows = []
    for i in range(int(round(seconds * FPS))):
        t = i / FPS
        lv = max((drowsiness(t), distraction(t)), key=lambda v: ("none", "warning", "critical").index(v))
        rows.append({"time_s": f"{t:.4f}", "drowsiness": drowsiness(t), "distraction": distraction(t),
                     "alert": alert(t) if alert else lv, "yawns": str(yawns(t)), "eyes_closed_s": f"{closed_s(t):.3f}",
                     "face_detected": "1" if face(t) else "0"})
    return Results([float(r["time_s"]) for r in rows], rows, [dict(e) for e in events])


def test_a_phone_is_found_by_its_event_and_a_false_one_fails_a_phone_free_stretch():
    phone_at = [{"type": "phone_use", "level": "warning", "start_s": 1.8, "end_s": 4.0}]
    found = score_clip(clip(iv("phone", 0.5, 4.0), iv("no_phone", 4.1, 6.0)), results(6.0, events=phone_at), CFG)
    assert [o.passed for o in found] == [True, True] and found[0].detections[0]["latency_s"] == pytest.approx(1.3)
    late = score_clip(clip(iv("phone", 0.5, 4.0)), results(6.0, events=[{**phone_at[0], "start_s": 2.8}]), CFG)
    assert not late[0].passed  # 2.3 s after the phone arrived
    false = score_clip(clip(iv("no_phone", 0.0, 6.0)), results(6.0, events=phone_at), CFG)
    assert not false[0].passed and false[0].violations == ["phone_use at 1.80 s"]


def clip(*intervals: Interval) -> Clip:
    return Clip("c", Path("c.mp4"), tuple(intervals))


def iv(label: str, start: float, end: float) -> Interval:
    e, f = default_expectation(label, start, end, CFG)
    return Interval(label, start, end, expect=e, forbid=f)


@pytest.mark.parametrize("label,dur,expect,forbid", [
    ("attentive", 10.0, [], ["drowsiness", "distraction"]),
    ("eyes_closed", 3.0, ["drowsiness >= warning within 1.7 s"], []),
    ("eyes_closed", 1.1, ["microsleep >= warning within 1.5 s"], []),      # too short for the alert filter
    ("eyes_closed", 0.6, [], ["drowsiness", "microsleep"]),                # a long blink
    ("yawn", 2.0, ["yawn within 1.3 s"], []),
    ("looking_down", 5.0, ["distraction >= warning within 4.2 s"], ["drowsiness", "microsleep"]),
    ("looking_aside", 2.0, [], ["drowsiness", "microsleep", "distraction"]),
    ("looking_aside", 3.3, [], ["drowsiness", "microsleep"]),              # near 3.5 s: either is right
    ("looking_up", 2.0, [], ["drowsiness", "microsleep"]),
    ("absent", 3.0, ["driver_absent >= warning within 1.5 s"], []),
    ("eyes_hidden", 30.0, ["eyes_not_visible within 1.5 s"], ["microsleep"]),
    ("phone", 5.0, ["phone_use within 2 s"], []),
    ("no_phone", 5.0, [], ["phone_use"]),
])
def test_default_expectations(label, dur, expect, forbid):
    e, f = default_expectation(label, 1.0, 1.0 + dur, CFG)
    assert [x.describe() for x in e] == expect and list(f) == forbid


def test_alert_in_time_passes_and_late_or_missed_fails():
    look = iv("looking_aside", 2.0, 8.0)
    on_time = results(10.0, distraction=lambda t: "warning" if 5.8 <= t < 8.5 else "none")
    late = results(10.0, distraction=lambda t: "warning" if 6.5 <= t < 8.5 else "none")
    (o,) = score_clip(clip(look), on_time, CFG)
    assert o.passed and o.detections[0]["latency_s"] == pytest.approx(3.8)
    (o,) = score_clip(clip(look), late, CFG)
    assert not o.passed and o.detections[0]["detected"] and o.detections[0]["latency_s"] == pytest.approx(4.5)
    (o,) = score_clip(clip(look), results(10.0), CFG)
    assert not o.passed and not o.detections[0]["detected"]


def test_an_alert_already_up_counts_at_once():
    (o,) = score_clip(clip(iv("eyes_closed", 3.0, 6.0)), results(8.0, drowsiness=lambda t: "critical"), CFG)
    assert o.passed and o.detections[0]["latency_s"] == 0.0


def test_forbidden_alerts_are_false_alerts_per_hour_of_attentive_driving():
    res = results(40.0, drowsiness=lambda t: "warning" if 12.0 <= t < 14.0 else "none",
                  distraction=lambda t: "warning" if 31.0 <= t < 33.0 else "none")
    c = clip(iv("attentive", 0.0, 20.0), iv("looking_down", 20.0, 26.0), iv("attentive", 26.0, 40.0))
    outcomes = score_clip(c, res, CFG)
    assert [o.passed for o in outcomes] == [False, False, False]  # the look down was never alerted
    assert outcomes[0].violations == ["drowsiness at 12.00 s"] and outcomes[2].violations == ["distraction at 31.00 s"]
    s = summarise([(c, outcomes)])
    assert s["false_alerts_attentive"] == 2 and s["attentive_s"] == 34.0
    assert s["false_alerts_per_hour"] == pytest.approx(2 / (34.0 / 3600), abs=0.1)
    assert not s["passed"] and s["scenarios"]["attentive"]["passed"] == 0
    assert "**FAIL**" in markdown(s, "driver-monitor evaluate t.yaml --out o", "t.yaml")


@pytest.mark.parametrize("until,grace_ok", [
    (6.4, True),     # the closure's alarm clears 1.4 s into the attentive stretch: its clearing hold
    (6.6, False),    # ... 1.6 s: held beyond the hold and the marking tolerance (1.5 s)
    (None, False),   # a PERCLOS alarm that never clears while the eyes are open
])
def test_an_alert_raised_before_an_interval_that_runs_into_it_fails_it(until, grace_ok):
    res = results(12.0, drowsiness=lambda t: "critical" if 2.2 <= t and (until is None or t < until) else "none")
    c = clip(iv("eyes_closed", 1.0, 5.0), iv("attentive", 5.0, 12.0))
    closed, attentive = score_clip(c, res, CFG)
    assert closed.passed and attentive.passed == grace_ok
    if not grace_ok:
        assert attentive.violations[0].startswith("drowsiness raised before the interval, still up")


def test_a_time_sharing_warning_may_take_its_reset_to_clear():
    """Euro NCAP's time-sharing warning ends 2 s after the driver is back on the road: 3.5 s of
    grace for a distraction alert, 1.5 s for drowsiness."""
    c = clip(iv("attentive", 10.0, 20.0))
    ok = results(20.0, distraction=lambda t: "warning" if 8.0 <= t < 13.3 else "none")
    late = results(20.0, distraction=lambda t: "warning" if 8.0 <= t < 13.7 else "none")
    assert score_clip(c, ok, CFG)[0].passed and not score_clip(c, late, CFG)[0].passed


def test_event_latencies_come_from_the_frames():
    yawn = iv("yawn", 2.0, 5.0)
    res = results(8.0, yawns=lambda t: 1 if t >= 3.1 else 0,
                  events=[{"type": "yawn", "level": "none", "start_s": 2.3, "end_s": 4.9}])
    (o,) = score_clip(clip(yawn), res, CFG)
    assert o.passed and o.detections[0]["latency_s"] == pytest.approx(1.1)  # when the counter moved
    closed = Interval("eyes_closed", 1.0, 2.15, expect=(Expect("event", "microsleep", "warning", 1.5),))
    res = results(4.0, closed_s=lambda t: max(0.0, t - 1.0) if t < 2.15 else 0.0,
                  events=[{"type": "microsleep", "level": "warning", "start_s": 1.0, "end_s": 2.15}])
    (o,) = score_clip(clip(closed), res, CFG)
    assert o.passed and o.detections[0]["latency_s"] == pytest.approx(1.0)


def test_truth_file_errors_name_the_clip_and_interval(tmp_path: Path):
    def write(text: str) -> Path:
        p = tmp_path / "t.yaml"
        p.write_text(text)
        return p

    cfg_for = lambda extra: load_config(None, extra)  # noqa: E731
    cases = [
        ("clips: []", "non-empty 'clips'"),
        ("clips:\n  - {video: a.mp4, intervals: [[dozing, 0, 1]]}", "clip 'a' interval 1: label 'dozing'"),
        ("clips:\n  - {video: a.mp4, intervals: [[attentive, 2, 1]]}", "0 <= start_s < end_s"),
        ("clips:\n  - {video: a.mp4, intervals: [[attentive, 0, 1]]}"
         "\n  - {video: a.mp4, intervals: [[attentive, 0, 1]]}",
         "unique"),
        ("clips:\n  - {video: a.mp4, intervals: "
         "[{label: yawn, start_s: 0, end_s: 1, expect: {alert: sleepy, within_s: 1}}]}",
         "alert 'sleepy'"),
        ("clips:\n  - {video: a.mp4, set: [calibration.mount=roof], intervals: [[attentive, 0, 1]]}",
         "calibration.mount"),
    ]
    for text, needle in cases:
        with pytest.raises(ConfigError) as err:
            load_truth(write(text), cfg_for)
        assert needle in str(err.value), (text, str(err.value))
    with pytest.raises(ConfigError, match="does not exist"):
        load_truth(tmp_path / "missing.yaml", cfg_for)


def test_interval_may_replace_the_default_expectation(tmp_path: Path):
    p = tmp_path / "t.yaml"
    p.write_text("clips:\n  - video: a.mp4\n    intervals:\n"
                 "      - {label: looking_aside, start_s: 1, end_s: 3, expect: {alert: distraction, within_s: 1.5},"
                 " forbid: []}\n")
    (c,) = load_truth(p, lambda extra: Config())
    assert c.intervals[0].expect == (Expect("alert", "distraction", "warning", 1.5),) and c.intervals[0].forbid == ()
    assert c.video == tmp_path / "a.mp4"


def test_missing_video_is_one_clear_line(tmp_path: Path, capsys):
    p = tmp_path / "t.yaml"
    p.write_text("clips:\n  - {video: nowhere.mp4, intervals: [[attentive, 0, 1]]}\n")
    rc = main(["evaluate", str(p), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc != 0 and err.startswith("error: ") and "nowhere.mp4" in err and "--video-dir" in err


# ---------------------------------------------------------------- the shared clips

@pytest.mark.data
@pytest.mark.slow
def test_every_scenario_of_the_shared_clips_passes(shared_eval):
    rc, out, summary = shared_eval
    failed = [(c["name"], r["label"], r["start_s"], r["detections"], r["violations"])
              for c in summary["clips"] for r in c["intervals"] if not r["passed"]]
    assert rc == 0 and summary["passed"], failed
    assert summary["false_alerts_attentive"] == 0 and summary["attentive_s"] > 60
    s = summary["scenarios"]
    assert s["eyes_closed"]["detected"] == s["eyes_closed"]["expected"] >= 4  # closures of 1 s or more
    assert s["yawn"]["detected"] == s["yawn"]["expected"] == 4
    assert s["absent"]["detected"] == 3 and s["eyes_hidden"]["detected"] == 1
    assert (out / "dms_eval.md").read_text().startswith("# Driver-state scenario evaluation")
    # the truth file covers every clip in ../shared/data/videos
    assert {Path(c["video"]).name for c in summary["clips"]} == {p.name for p in need_data("videos").iterdir()}


@pytest.mark.data
@pytest.mark.slow
def test_a_regression_fails_the_evaluation(shared_eval, tmp_path: Path, capsys):
    # a microsleep threshold of 4 s misses the 3.9 s closure in yawn_in_car.mp4
    rc = main(["evaluate", str(TRUTH), "--out", str(tmp_path), "--video-dir", str(need_data("videos")),
               "--clip", "yawn_in_car", "--set", "drowsiness.microsleep_s=4",
               "--set", "drowsiness.long_closure_critical_s=5"])
    out = capsys.readouterr().out
    assert rc == 1 and "FAILED eyes_closed 2.90-6.83" in out and "some scenarios FAILED" in out
    # --reuse scores what is there without analysing again
    rows = list(csv.DictReader(open(tmp_path / "yawn_in_car" / "frames.csv")))
    assert rows and main(["evaluate", str(TRUTH), "--out", str(tmp_path), "--video-dir", str(need_data("videos")),
                          "--clip", "yawn_in_car", "--reuse"]) == 1


@pytest.mark.data
@pytest.mark.slow
def test_long_glances_and_time_sharing_on_rearranged_real_frames(tmp_path: Path):
    # tools/make_scenario_clips.py holds real head turns / a real look down for 4.7-5.8 s, slides the
    # face out of the picture after a turn, and strings five short glances together
    from tools import make_scenario_clips as tool

    clips = tmp_path / "clips"
    assert tool.main(["--out", str(clips), "--video-dir", str(need_data("videos"))]) == 0
    rc = main(["evaluate", str(clips / "derived_clips.yaml"), "--out", str(tmp_path / "eval")])
    summary = json.loads((tmp_path / "eval" / "dms_eval.json").read_text())
    failed = [(c["name"], r["label"], r["detections"], r["violations"])
              for c in summary["clips"] for r in c["intervals"] if not r["passed"]]
    assert rc == 0 and summary["passed"], failed
    s = summary["scenarios"]
    assert s["looking_aside"]["detected"] == 3 and s["looking_down"]["detected"] == 1
    assert s["glances"]["detected"] == 1
    assert s["looking_aside"]["max_latency_s"] <= 3.5 + 0.2 + 0.5  # ADDW time + raise time + 0.5 s
    lost = next(c for c in summary["clips"] if c["name"] == "turn_then_out_of_view")
    events = [json.loads(x) for x in (tmp_path / "eval" / lost["name"] / "events.jsonl").read_text().splitlines()]
    dist = [e for e in events if e["type"] == "distraction"]
    absent = [e for e in events if e["type"] == "driver_absent"]
    glance = [e for e in events if e["type"] == "glance"]
    # one glance runs from the turn through the face's absence (not ended by not seeing anything),
    # and it raises the distraction alert 3.5 s after it began
    assert absent and glance
    assert glance[0]["start_s"] < absent[0]["start_s"] and glance[0]["end_s"] >= absent[0]["end_s"]
    assert dist and dist[0]["start_s"] == pytest.approx(glance[0]["start_s"] + 3.5 + 0.2, abs=0.1)


# ---------------------------------------------------------------- the near-infrared clips

IR_TRUTH = ROOT / "scenarios" / "ir_clips.yaml"
# what the monitor still misses on the infrared clips (docs/eye_state.md), each for a reason of its own
IR_KNOWN_MISSES = {
    ("eye_closed_05", "looking_up", 0.0): "a 0.4 s blink, 0.2 s open, then sleep: read as one closure from 0.2 s",
    ("look_sideway_02", "looking_aside", 0.0): "the head swings through the road at 3.5 s: the glance restarts",
    ("yawn_02", "eyes_closed", 0.0): "the head thrown back in the yawn: no face mesh for its first 29 frames",
    ("yawn_02", "yawn", 0.0): "the same: no mesh, no mouth",
    ("yawn_04", "eyes_closed", 0.0): "no mesh for 4 frames, then 1.0 s of the closure left: too short to alert",
    ("yawn_05", "yawn", 0.2): "found 1.6 s after the mouth opens, 0.3 s later than the marks allow",
    ("Phoning_14", "attentive", 3.6): "3.6 s at the ear: the phone's warning (3.5 s of use) comes 0.5 s after "
                                       "the phone is lowered, the vote ending three runs after the phone",
}


@pytest.mark.data
@pytest.mark.slow
def test_the_infrared_clips_raise_no_false_alert_and_miss_only_the_known(tmp_path: Path):
    need_data("ir_clips")
    main(["evaluate", str(IR_TRUTH), "--out", str(tmp_path)])
    summary = json.loads((tmp_path / "dms_eval.json").read_text())
    failed = {(c["name"], r["label"], r["start_s"]) for c in summary["clips"] for r in c["intervals"]
              if not r["passed"]}
    assert failed <= set(IR_KNOWN_MISSES), sorted(failed - set(IR_KNOWN_MISSES))
    # the phone clips' stretches with a phone are not attentive (scenarios/ir_phone.yaml judges them)
    assert summary["false_alerts_attentive"] <= 1 and summary["attentive_s"] > 15  # the one: Phoning_14's
    s = summary["scenarios"]
    assert s["eyes_closed"]["passed"] >= s["eyes_closed"]["intervals"] - 2
    assert s["attentive"]["passed"] >= s["attentive"]["intervals"] - 1


@pytest.mark.data
@pytest.mark.slow
def test_phone_use_is_found_on_the_infrared_phone_clips_and_never_on_the_others(tmp_path: Path):
    """The default configuration (the detector on, its schedule and vote from docs/phone_eval.md)
    on the phone's truth: at least 10 of the 11 phone clips within 2 s, no phone_use elsewhere."""
    need_data("ir_clips")
    main(["evaluate", str(ROOT / "scenarios" / "ir_phone.yaml"), "--out", str(tmp_path)])
    s = json.loads((tmp_path / "dms_eval.json").read_text())["scenarios"]
    assert s["phone"]["intervals"] == 11 and s["phone"]["passed"] >= 10
    assert s["no_phone"]["passed"] == s["no_phone"]["intervals"] == 27
