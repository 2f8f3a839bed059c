"""Telemetry: the hub that numbers events and fans them out to sinks, and the sinks."""
