"""Devices for testing the server: each one is the real firmware, built for the host.

``device_sim`` starts ``edge_firmware/build/host/noctis-device`` processes (the
firmware's own queue, sync, codec and time code with a POSIX port underneath), feeds
them simulated nights through their sensor interface, drives their clocks and radio
links, cuts their power, and checks with the server that every epoch they made is
stored exactly once or declared gone. There is no second implementation of the device.
"""
