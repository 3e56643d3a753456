"""Fault injection: real services, real faults, invariants checked from outside."""
