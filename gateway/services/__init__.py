"""The service layer: load, apply a domain rule, save, emit — one function per use case."""
