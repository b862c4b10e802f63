"""envcheck smoke: does each framework really compute on each device?

``runner.run_smoke`` starts one child interpreter per framework (``_torch``, ``_tensorflow``,
``_jax``, sharing ``_harness``), all at once, and gathers a ``models.SmokeReport``; ``render``
draws the table and ``cli`` registers the command. Frameworks are imported only in children.
"""
