"""envcheck bench: how fast is each device, next to its theoretical peak?

``runner.run_bench`` measures in one child interpreter (``_torch``, or ``_numpy`` without
torch; timing in ``_timing``) and sets the figures against ``peaks`` (CPU formula, PCIe table)
and the GPU knowledge base; ``render`` and ``plot`` draw them, ``cli`` registers the command.
"""
