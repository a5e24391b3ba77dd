"""Health Collaboration Hub infrastructure: the Pulumi program, its checks and its emulator."""

__version__ = "0.1.0"
