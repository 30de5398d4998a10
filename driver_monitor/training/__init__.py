"""Training-only code: everything that makes or measures the emotion + AU network and the
eye-state model. The run-time app (analyze, the dashboard, bench, the engines, the pipeline) never
imports this package; ``tools/`` are its command lines.

* data: ``datasets`` (FERPlus, FER2013, class folders, CK+), ``face_au`` / ``landmarker`` /
  ``au_labels`` (AU pseudo-labels from MediaPipe and their cache), ``targets`` (labels in the
  network's class space, class weights);
* training: ``options`` (what a run is asked to do), ``presets`` (the network presets), ``amp``
  (mixed precision), ``augment`` and ``occlusion_aug`` (augmentation, random occluders),
  ``losses``, ``networks`` (the network to train, freezing, the teacher, the weight average),
  ``validation``, ``trainer`` (the run); ``eye_state`` / ``eye_state_runs`` (the eye-state model);
* measuring a model: ``predictors`` (torch checkpoints; ONNX files: ``engine.predict``),
  ``model_eval`` / ``model_eval_report`` (model accuracy on FERPlus, FER2013, CK+),
  ``occlusion`` / ``occlusion_eval`` / ``occlusion_report`` (the occlusion benchmark),
  ``explain_figure`` (Grad-CAM and occlusion maps of one prediction).
"""
