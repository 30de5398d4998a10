"""The eye state on drives whose people the model never saw (``tools/eye_holdout_eval.py``): every
marked clip analysed by the app with the eye-state model trained without that clip's person
(``tools/train_eye_state.py cv`` writes one per person), then

* frame agreement: the app's ``eyes_closed`` (the model, its per-driver threshold, the EAR beside
  it) and the model's own P(closed) >= 0.5 against the marks (open / closed frames; half-open and
  hidden ones are left out), per person, per class and per clip, on every clip marked frame by frame
  (``scenarios/frame_marks/subjects.csv``), those without a scenario of these truth files too (the
  phone calls: the eyes are marked there as everywhere);
* scenarios: every marked interval of ``scenarios/ir_clips.yaml`` and ``scenarios/shared_clips.yaml``
  scored as ``driver-monitor evaluate`` scores it.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any, Callable

from ..analyze import analyze
from ..config import PROJECT_ROOT, load_config
from ..scenarios import Results, load_truth, score_clip, summarise

MARKS = PROJECT_ROOT / "scenarios" / "frame_marks"
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
TRUTHS = (PROJECT_ROOT / "scenarios" / "ir_clips.yaml", PROJECT_ROOT / "scenarios" / "shared_clips.yaml")
LABEL = {"open": 0, "closed": 1}
# clips of a marked person that are not marked frame by frame themselves
SAME_PERSON = {"face_then_noface": "single_face", "noface_then_face": "single_face"}


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _count(counts: dict[str, list[int]], key: str, truth: int, app: int | None, model: int | None) -> None:
    c = counts.setdefault(key, [0] * 8)  # n_open, n_closed, app right open/closed, model right o/c, unread o/c
    c[truth] += 1
    if app is None:
        c[6 + truth] += 1
    elif app == truth:
        c[2 + truth] += 1
    if model is not None and model == truth:
        c[4 + truth] += 1


def agreement(frames_csv: Path, marks_csv: Path, key: str, counts: dict[str, dict[str, list[int]]]) -> None:
    """Add one clip's frames to ``counts[scope][name]`` (scopes: subject, clip, all)."""
    marks = {int(r["frame"]): r["eyes"] for r in _rows(marks_csv)}
    for r in _rows(frames_csv):
        truth = LABEL.get(marks.get(int(r["frame"]), ""))
        if truth is None or r.get("face_detected") != "1":
            continue
        app = int(r["eyes_closed"]) if r.get("eyes_closed") not in ("", None) else None
        p = r.get("eye_closed_p", "")
        model = int(float(p) >= 0.5) if p not in ("", None) else None
        subject, clip = key.split("/")
        for scope, name in (("subject", subject), ("clip", clip), ("all", "all")):
            _count(counts.setdefault(scope, {}), name, truth, app, model)


def _pct(right: int, n: int) -> str:
    return f"{100.0 * right / n:.1f}" if n else "-"


def agreement_table(rows: dict[str, list[int]]) -> list[str]:
    out = ["| | open frames | closed frames | app: open right | app: closed right | app: all | lids not read "
           "| model alone: all |", "|---|---|---|---|---|---|---|---|"]
    for name, c in rows.items():
        read = c[0] + c[1] - c[6] - c[7]
        out.append(f"| {name} | {c[0]} | {c[1]} | {_pct(c[2], c[0] - c[6])} | {_pct(c[3], c[1] - c[7])} | "
                   f"{_pct(c[2] + c[3], read)} | {c[6] + c[7]} | {_pct(c[4] + c[5], c[0] + c[1])} |")
    return out


def run(models: str | Path, out: str | Path, overrides: list[str], unseen_model: str | Path,
        log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
        data: str | Path = SHARED_DATA) -> dict[str, Any]:
    """Analyse every clip of the truth files with the eye-state model trained without its person
    (``<models>/eye_state_without_<person>.onnx``; ``unseen_model`` for clips of nobody marked) into
    ``out``; -> {agreement: per-frame counts by scope, scenarios: the scenario summary}."""
    subjects = {r["clip"]: r for r in _rows(MARKS / "subjects.csv")}
    out = Path(out)
    counts: dict[str, dict[str, list[int]]] = {}
    scored = []
    counted: set[str] = set()
    for truth in TRUTHS:
        for clip in load_truth(truth, lambda o: load_config(None, list(o) + overrides)):
            source = clip.name if clip.name in subjects else Path(clip.video).stem
            subject = subjects[source]["subject"] if source in subjects else SAME_PERSON.get(source)
            # a clip of nobody marked (no face, dark sunglasses): no model was trained on its person
            model = Path(models) / f"eye_state_without_{subject}.onnx" if subject else Path(unseen_model)
            cfg = load_config(None, list(clip.overrides) + overrides + [f"eyes.model={model}"])
            folder = out / clip.name
            analyze(str(clip.video), folder, cfg, progress=False, log=lambda m: None)
            scored.append((clip, score_clip(clip, Results.read(folder), cfg)))
            marks = next(iter(MARKS.glob(f"*/{source}.csv")), None)
            if marks is not None and clip.name == source:  # one agreement count per marked video
                agreement(folder / "frames.csv", marks, f"{subject}/{source}", counts)
                counted.add(source)
            log(f"{clip.name}: {model.name}")
    for source, row in subjects.items():  # marked clips without a scenario here: frame agreement only
        if source in counted:
            continue
        model = Path(models) / f"eye_state_without_{row['subject']}.onnx"
        folder = out / source
        analyze(str(Path(data) / row["video"]), folder,
                load_config(None, list(overrides) + [f"eyes.model={model}"]), progress=False, log=lambda m: None)
        agreement(folder / "frames.csv", next(MARKS.glob(f"*/{source}.csv")), f"{row['subject']}/{source}", counts)
        log(f"{source}: {model.name} (frames only)")
    return {"agreement": counts, "scenarios": summarise(scored)}


def markdown(res: dict[str, Any], command: str) -> str:
    s = res["scenarios"]
    lines = ["# Eye state on people the model never saw", "", "Produced by:", "", "```", command, "```", "",
             "Each marked clip is analysed by the app with the eye-state model trained without that clip's person "
             "(leave one person out; `tools/train_eye_state.py cv`). Frames marked half-open or hidden are left out.",
             "", "## Frame agreement with the marks", "", "### By person", ""]
    lines += agreement_table(res["agreement"]["all"] | res["agreement"]["subject"])
    lines += ["", "### By clip", ""] + agreement_table(res["agreement"]["clip"])
    lines += ["", "## Scenarios", "", "| scenario | intervals | passed | detected / expected | false alerts |",
              "|---|---|---|---|---|"]
    for label, v in s["scenarios"].items():
        det = f"{v['detected']} / {v['expected']}" if v["expected"] else "-"
        lines.append(f"| {label} | {v['intervals']} | {v['passed']} | {det} | {v['violations']} |")
    fph = s["false_alerts_per_hour"]
    lines += ["", f"Attentive driving marked: {s['attentive_s']:.1f} s; false drowsiness / distraction alerts in it: "
              f"{s['false_alerts_attentive']}" + ("" if fph is None else f" ({fph:g} per hour)") + ".", "",
              "Failed intervals:", ""]
    for c in s["clips"]:
        for r in c["intervals"]:
            if not r["passed"]:
                why = [f"{d['expect']}: " + ("missed" if not d["detected"] else f"after {d['latency_s']:.2f} s")
                       for d in r["detections"] if not d["ok"]] + r["violations"]
                lines.append(f"- {c['name']} {r['label']} {r['start_s']:.2f}-{r['end_s']:.2f} s"
                             f"{' (' + r['note'] + ')' if r['note'] else ''}: {'; '.join(why)}")
    return "\n".join(lines) + "\n"
