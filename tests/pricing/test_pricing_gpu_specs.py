"""envcheck.knowledge.gpus: lookup by NVML / marketing / cloud names, normalised BF16 peaks, provenance."""

from __future__ import annotations

import pytest

from envcheck.knowledge import gpus

# Product names as NVML reports them on real machines (shared/reference/nvidia-smi captures),
# plus cloud catalog spellings (SkyPilot, RunPod) and marketing names.
KNOWN = {
    "NVIDIA A100-SXM4-80GB": "A100 80GB",
    "NVIDIA A100-SXM4-40GB": "A100",
    "A100-SXM4-40GB": "A100",
    "NVIDIA A100-PCIE-40GB": "A100 PCIe",
    "NVIDIA A100 80GB PCIe": "A100 80GB PCIe",
    "Tesla V100-SXM2-16GB": "V100",
    "Tesla V100-SXM2-32GB": "V100 32GB",
    "NVIDIA GeForce RTX 4090": "RTX 4090",
    "NVIDIA GeForce RTX 5090": "RTX 5090",
    "NVIDIA GeForce RTX 3090": "RTX 3090",
    "NVIDIA H100 80GB HBM3": "H100",
    "NVIDIA H100 PCIe": "H100 PCIe",
    "NVIDIA H200": "H200",
    "A10G": "A10G",
    "NVIDIA A10G": "A10G",
    "NVIDIA A10": "A10",
    "NVIDIA L4": "L4",
    "NVIDIA L40S": "L40S",
    "Tesla T4": "T4",
    "Tesla K80": "K80",
    "Tesla P100-PCIE-16GB": "P100 PCIe",
    "NVIDIA RTX A6000": "RTX A6000",
    "NVIDIA RTX 6000 Ada Generation": "RTX 6000 Ada",
    "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition": "RTX PRO 6000 Max-Q",
    "A100-80GB": "A100 80GB",
    "A100-80GB-SXM": "A100 80GB",
    "V100-32GB": "V100 32GB",
    "RTX4090": "RTX 4090",
    "RTX6000-Ada": "RTX 6000 Ada",
    "H200-SXM": "H200",
    "tpu v5 lite": "TPU v5e",
    "Instinct MI300X": "MI300X",
}


@pytest.mark.parametrize(("name", "expected"), sorted(KNOWN.items()))
def test_lookup_resolves_driver_cloud_and_marketing_names(name: str, expected: str) -> None:
    spec = gpus.lookup(name)
    assert spec is not None, name
    assert spec.name == expected


@pytest.mark.parametrize(
    "name",
    [
        "NVIDIA H100 NVL 188GB",
        "NVIDIA GeForce RTX 3080",
        "NVIDIA RTX A5000",
        "NVIDIA GeForce GTX 680",
        "RTX 4090 48GB",
        "",
    ],
)
def test_lookup_refuses_near_misses(name: str) -> None:
    """A distinguishing leftover word (NVL, a different memory size) must not fall back to a sibling."""
    assert gpus.lookup(name) is None


def test_compute_capability_comes_with_the_lookup() -> None:
    expected = {
        "NVIDIA A100-SXM4-80GB": "8.0",
        "NVIDIA H100 80GB HBM3": "9.0",
        "Tesla V100-SXM2-16GB": "7.0",
        "NVIDIA GeForce RTX 4090": "8.9",
        "NVIDIA GeForce RTX 5090": "12.0",
        "Tesla K80": "3.7",
    }
    for name, cc in expected.items():
        spec = gpus.lookup(name)
        assert spec is not None and spec.compute_capability == cc, name
    tpu = gpus.lookup("TPU v4")
    assert tpu is not None and tpu.compute_capability is None and tpu.is_tpu


def test_family_search_returns_every_variant() -> None:
    assert {s.name for s in gpus.search("A100")} == {"A100", "A100 PCIe", "A100 80GB", "A100 80GB PCIe"}
    assert {s.name for s in gpus.search("a100 80gb")} == {"A100 80GB", "A100 80GB PCIe"}
    assert {s.name for s in gpus.search("H100")} == {"H100", "H100 PCIe", "H100 NVL"}
    assert gpus.search("no such gpu") == []


def test_geforce_bf16_is_normalised_to_fp32_accumulate() -> None:
    """3090/4080/5090 publish FP16-accumulate headlines; BF16 training runs at half of that."""
    for name in ("RTX 3090", "RTX 4080", "RTX 5090"):
        spec = gpus.lookup(name)
        assert spec is not None and spec.tensor_dense_tflops_published and spec.bf16_tflops_dense
        assert spec.bf16_tflops_dense == pytest.approx(spec.tensor_dense_tflops_published / 2, rel=0.01), name
        assert "halved" in spec.bf16_basis
    for name in ("RTX 4090", "RTX 3090 Ti"):  # already published at FP32 accumulate
        spec = gpus.lookup(name)
        assert spec is not None and spec.bf16_tflops_dense == spec.tensor_dense_tflops_published
    a100 = gpus.lookup("A100")
    assert a100 is not None and a100.bf16_tflops_dense == 312  # data-centre parts: no halving


def test_derived_peaks_agree_with_published_siblings() -> None:
    """The 4 x FP32 rule used for unpublished GA10x/Ada figures reproduces the published ones."""
    spec = gpus.lookup("A40")  # derived: 4 x FP32
    assert spec is not None and spec.fp32_tflops and spec.bf16_tflops_dense
    assert spec.bf16_tflops_dense == pytest.approx(4 * spec.fp32_tflops, rel=0.01)
    for name in ("L40S",):  # the published dense figure agrees with the rule within 2 %
        spec = gpus.lookup(name)
        assert spec is not None and spec.fp32_tflops and spec.bf16_tflops_dense
        assert spec.bf16_tflops_dense == pytest.approx(4 * spec.fp32_tflops, rel=0.02)


def test_peak_falls_back_to_fp32_without_tensor_cores() -> None:
    spec = gpus.lookup("GTX 1080 Ti")
    assert (
        spec is not None and spec.bf16_tflops_dense is None and spec.peak_tflops == spec.fp32_tflops == 11.3
    )


def test_every_row_has_provenance_and_sane_numbers() -> None:
    specs = gpus.all_specs()
    assert len(specs) == 46
    assert len({s.name for s in specs}) == len(specs)
    for s in specs:
        assert s.source and s.as_of, s.name
        if s.vendor == "NVIDIA":
            assert s.compute_capability, s.name
        for value in (s.memory_gb, s.memory_bw_gbs, s.fp32_tflops, s.bf16_tflops_dense, s.tdp_w):
            assert value is None or value > 0, s.name
    prices = gpus.lookup("RTX 4090")
    assert prices is not None and prices.prices.street_usd == 2749 and prices.prices.street_date == "2026-03"
    assert prices.prices.best_usd == 2749


def test_to_dict_is_json_ready() -> None:
    import json

    spec = gpus.lookup("H100")
    assert spec is not None
    doc = json.loads(json.dumps(spec.to_dict()))
    assert doc["name"] == "H100" and doc["prices"]["launch_msrp_usd"] is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("NVIDIA A10G", "A10G"),
        ("NVIDIA H100 NVL", "H100 NVL"),
        ("NVIDIA GH200 480GB", "GH200"),
    ],
)
def test_rented_accelerators_have_specs_and_peaks(name: str, expected: str) -> None:
    """Every accelerator the clouds rent out can be priced per TFLOP and costed (issue 14: A10G)."""
    spec = gpus.lookup(name)
    assert spec is not None and spec.name == expected
    assert spec.peak_tflops and spec.memory_gb and spec.source and spec.as_of


def test_a10g_peak_is_an_upper_bound_said_so() -> None:
    spec = gpus.lookup("A10G")
    assert spec is not None and spec.bf16_tflops_dense == 125 and "upper bound" in spec.bf16_basis
