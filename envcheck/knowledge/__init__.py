"""envcheck's versioned knowledge base: the facts that turn versions into verdicts.

Every fact lives in a CSV under ``envcheck/knowledge/data/`` with its ``source`` and ``as_of``
date. The torch, TensorFlow and JAX tables are generated from the released wheels by
``scripts/refresh_knowledge.py`` (``envcheck.knowledge.refresh``): each generated row names the
wheel it was read from (``artifact``, ``sha256``); rows no reachable index backs are kept from
release notes and say so in ``source``. The modules here are small typed loaders, read lazily
(on first use, then cached), so importing this package costs nothing. This is the single source
of truth for framework <-> CUDA variant <-> cuDNN <-> minimum driver <-> GPU arch: ``envcheck``
rules and ``provision image plan`` both resolve through it.

Public API (import the submodule you need; each loads only its own tables):

``envcheck.knowledge.builds``
    ``builds(framework, release=None) -> list[Build]`` every GPU build known for "torch",
    "tensorflow" or "jax". A ``Build`` has ``release``, ``cuda`` ("12.6"), ``status``
    (stable/experimental), ``cudnn``, ``python_min``/``python_max``, ``archs`` (("sm_80",
    "compute_90", ...) or None), ``min_cc``, ``min_driver``, ``tag`` ("cu126"), ``index_url``,
    ``source``/``as_of``, ``pythons`` (the cpXY wheel tags published), ``nccl``/``cublas``/
    ``cuda_runtime`` pins, ``artifact``/``sha256`` and ``verified`` (read from the wheel), and
    ``install_command(version=None, with_=())`` -> the exact pip line.
    ``resolve(framework, release=None, *, driver=, driver_cuda=, compute_capabilities=,
    python=, experimental=True, cuda_major=None) -> Choice`` picks the build that runs on that
    driver, covers every GPU and has a wheel for that Python (stable first, then newest CUDA);
    ``Choice.rejected`` says why each other candidate does not fit. ``Build.supports_cc(cc)`` needs
    both code for the GPU (SASS or PTX) and a CUDA release that knows it (``cuda_archs``), so a
    CUDA 12.5 build's compute_90 PTX (TensorFlow 2.21) never counts for an RTX 5090.
    ``release_of(framework, version)`` maps an installed version ("2.6.0+cu124") to its row
    ("2.6"); ``releases(framework)`` lists known releases; ``newest_patch("2.11") -> "2.11.0"``
    lets ``install_command()`` print an exact pin; ``companions("2.1.0")`` -> the torchvision /
    torchaudio built for it; ``other_variants("2.15")`` says whether the tables know more than the
    PyPI build; ``jax_release(python=, extra=)`` the newest jax that installs there.
``envcheck.knowledge.coverage``
    ``tables()`` each table's age and newest release (``envcheck rules --knowledge``);
    ``outside("torch", "2.16.0")`` -> "newer"/"older"/None; ``problems()`` the staleness check
    CI runs.
``envcheck.knowledge.drivers``
    ``check(cuda, driver=, driver_cuda=) -> DriverCheck(ok, floor, recommend, mode)`` applies
    NVIDIA's minor-version compatibility from CUDA 11 on and per-release floors before it
    (``floor((10, 1)) -> "418.39"``); ``family_floor(12) -> "525.60.13"``;
    ``highest_cuda("410.104") -> (10, 0)`` the CUDA a driver runs in full;
    ``toolkit_driver("12.4.1")`` the driver NVIDIA pairs with a toolkit; ``toolkit_releases("12.6")``
    -> [("12.6.0", "560.28.03"), ...] the known x.y.z releases; ``recommended_driver(13)``
    -> "580.65.06"; ``newest_family(driver)`` the highest CUDA major a driver runs.
``envcheck.knowledge.archs``
    SASS/PTX rules: ``runs_on(code, cc)``, ``covering(arch_list, cc)``, ``needs_jit``,
    ``parse_code("sm_90")``, ``parse_cc("8.6")``, ``expand_torch_list("8.6 9.0+PTX")``.
``envcheck.knowledge.cuda_archs``
    Which CUDA releases know a compute capability: ``support((12, 0))`` the row (first and last
    CUDA, source), ``window(cc)`` the range after binary compatibility (8.9 runs CUDA 11.0 code
    through sm_80), ``fits((12, 4), (12, 0)) -> Fit(ok=False, reason="compute capability 12.0
    needs CUDA >= 12.8")``; ``major_only=True`` for JAX's "cuda12".
``envcheck.knowledge.capabilities``
    ``compute_capability(gpu_name) -> "8.9" | None`` (the GPU spec table first, then generations).
``envcheck.knowledge.gpus``
    GPU specs (``lookup(name) -> GpuSpec | None``), maintained separately.
``envcheck.knowledge._table``
    ``rows(file)`` / ``files()``: the raw rows, validated for provenance on load.

Version strings: ``envcheck.knowledge._version`` parses driver ("525.60.13"), CUDA ("12.6",
"cu126", 12020) and cuDNN ("9.1.0.70", 90100) spellings into comparable tuples.
"""
