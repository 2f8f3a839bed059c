"""leyline: the contracts every esper package shares: errors, configuration types, enums, events.

Leyline imports no other esper package.
"""
