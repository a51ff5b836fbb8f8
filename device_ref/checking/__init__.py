"""Driver checking: reference devices that judge the driver in front of them.

``device.py`` wraps the reference devices (blk, rng) so that every driver
action a device can see is checked; ``records.py`` holds what they record;
``requirements.py`` maps properties to requirement ids through the vector
files; ``report.py`` writes and reads the JSON report.
"""
