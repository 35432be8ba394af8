"""Camera simulator: physically based RAW captures with ground truth.

Shares no code with the develop stages (only ``rawlab.core``, the DNG writer
and colour-science), so an error in one cannot hide in the other.

>>> from rawlab.sim import capture, scene
>>> cap = capture(scene.colorchecker((600, 400)), "phone-small", iso=100, seed=1)
"""

from rawlab.sim import scene
from rawlab.sim.burst import capture_burst, handshake_trajectory
from rawlab.sim.camera import CameraModel, builtin_cameras, load_camera
from rawlab.sim.capture import MovingDisc, SimCapture, capture, write_captures

__all__ = [
    "CameraModel",
    "MovingDisc",
    "SimCapture",
    "builtin_cameras",
    "capture",
    "capture_burst",
    "handshake_trajectory",
    "load_camera",
    "scene",
    "write_captures",
]
