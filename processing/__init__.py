"""Pure computation on arrays: orientation, calibration, angles, gait, holds, activity.

Nothing here performs I/O, uses asyncio or imports bleak, and nothing imports another hipback package.
Conventions (see README "Conventions"): quaternions scalar first (w, x, y, z), Hamilton product,
sensor-to-world; SI units and radians inside, degrees only at the edges.
"""
