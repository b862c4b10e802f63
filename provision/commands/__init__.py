"""provision command groups, one module each."""
