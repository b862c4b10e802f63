"""Placeholder until the rule modules land (replaced by driver, wheels, arch, ... modules)."""
