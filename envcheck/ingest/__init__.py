"""Readers for other reports: envcheck JSON and PyTorch collect_env text."""
