"""The maintenance domain: entities, rules of who may do what, and who is told.

Standard library only; PostgreSQL, Redis and HTTP are adapters around it.
"""
