"""envcheck bench."""
