"""any4d: RGB video, depth and camera pose as one 4D scene.

Subpackages (DESIGN §7), left to right in the data flow: ``geometry`` → ``data`` → ``viz``.
"""

__version__ = "0.1.0"
