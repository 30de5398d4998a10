"""The stages one frame goes through, each with its own state and policy; the pipeline wires them.

* :mod:`.face`: the face mesh (and the person check) on the frame: the first stage of the frame
  loop, which may run one frame ahead on its own thread;
* :mod:`.eyes`: the eye-state model's P(closed) for the driver's eyes, read again only when the
  lids move;
* :mod:`.engine_reader`: the emotion/AU engine on the driver's aligned face at its stride and
  rate, smoothed, with the hidden regions and AUs;
* :mod:`.phone`: the phone detector on the whole frame on its schedule, on a thread of its own.

Geometry, alignment, smoothing and the driver state itself (``monitor``) are the pipeline's
fixed steps. A model-backed stage gets its model from the run's assembly (runtime.Runtime), which
opens it once from the config.
"""
