"""Measurements of the app on marked material, beside ``driver-monitor evaluate`` (``scenarios``):
truth files from per-frame marks (``frame_marks``), scenario clips re-ordered from a marked clip
(``scenario_clips``), the eye state on people the model never saw (``eye_holdout``), the phone
detector on the marked phones (``phone``, ``phone_report``), and what a region-attention model said
it saw on real drives (``visibility``). Run by ``tools/``; run-time code, so no training code."""
