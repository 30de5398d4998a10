"""Face stage: mesh (MediaPipe adapter), driver selection, alignment, geometry signals, eye visibility.

Import the submodules directly: ``face.geometry``, ``face.select`` and ``face.visibility`` are pure
(numpy / OpenCV); only ``face.mesh`` touches MediaPipe, and only when a detector is created.
"""
