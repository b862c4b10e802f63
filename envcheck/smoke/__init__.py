"""envcheck smoke."""
