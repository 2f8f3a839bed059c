"""Contracts shared by every esper package: errors, configuration types, enums, events.

Leyline imports no other esper package.
"""
