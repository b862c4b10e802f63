"""The EFA / cluster-networking table: provenance enforced at load, answers with their reasons."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path

import pytest

from provision.cluster import capabilities
from provision.cluster.capabilities import CapabilityTableError

REPO = Path(__file__).resolve().parents[2]

# Numbers AWS publishes in prose, to cross-check the generated table against a second source.
DOCUMENTED = {
    # docs.aws.amazon.com/AWSEC2/latest/UserGuide/efa-acc-inst-types.html ("EFA configuration for P5")
    "p5.48xlarge": 32,
    # awsdocs-neuron setup-trn1-multi-node-execution: "trn1.32xlarge has 8 EFA devices, trn1n 16"
    "trn1.32xlarge": 8,
    "trn1n.32xlarge": 16,
}


def test_every_row_has_its_source_and_date() -> None:
    rows = capabilities.table()
    assert len(rows) > 100
    for row in rows.values():
        assert row.source.startswith("EC2 DescribeInstanceTypes")
        assert dt.date(2025, 1, 1) <= row.as_of <= dt.date.today()


@pytest.mark.parametrize(("instance_type", "count"), sorted(DOCUMENTED.items()))
def test_the_table_agrees_with_the_documentation(instance_type: str, count: int) -> None:
    assert capabilities.efa(instance_type).count == count


def test_answers_carry_their_reason() -> None:
    p4d = capabilities.efa("p4d.24xlarge")
    assert p4d.supported is True and p4d.count == 4
    assert "up to 4 EFA" in p4d.reason and "as of 20" in p4d.reason
    small = capabilities.efa("g5.xlarge")
    assert small.supported is False and "does not support EFA" in small.reason
    unknown = capabilities.efa("zz9.hyper")
    assert unknown.supported is None and "unknown" in unknown.reason and "refresh" in unknown.reason
    assert capabilities.cluster_placement("p5.48xlarge").supported is True
    assert capabilities.cluster_placement("nope.large").supported is None
    assert capabilities.efa("g6e.48xlarge").count == 4  # the largest g6e has four network cards


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("instance_type,as_of\nx,2026-01-01\n", "no column"),
        (
            "instance_type,accelerator_count,efa_max_interfaces,network_cards,cluster_placement,source,as_of\n"
            "p5.48xlarge,8,32,32,yes,,2026-01-01\n",
            "no source",
        ),
        (
            "instance_type,accelerator_count,efa_max_interfaces,network_cards,cluster_placement,source,as_of\n"
            "p5.48xlarge,8,32,32,yes,s,last week\n",
            "p5.48xlarge",
        ),
        (
            "instance_type,accelerator_count,efa_max_interfaces,network_cards,cluster_placement,source,as_of\n"
            "p5.48xlarge,8,NaN,32,yes,s,2026-01-01\n",
            "p5.48xlarge",
        ),
        (
            "instance_type,accelerator_count,efa_max_interfaces,network_cards,cluster_placement,source,as_of\n"
            "p5.48xlarge,8,-1,32,yes,s,2026-01-01\n",
            "impossible",
        ),
        (
            "instance_type,accelerator_count,efa_max_interfaces,network_cards,cluster_placement,source,as_of\n"
            "p5.48xlarge,8,32,32,yes,s,2026-01-01\np5.48xlarge,8,32,32,yes,s,2026-01-01\n",
            "twice",
        ),
        (
            "instance_type,accelerator_count,efa_max_interfaces,network_cards,cluster_placement,source,as_of\n"
            "p5.48xlarge,8,32,32,yes,s\n",
            "cells",
        ),
    ],
)
def test_a_malformed_table_fails_loudly(text: str, message: str) -> None:
    with pytest.raises(CapabilityTableError, match=message):
        capabilities._load(text, "t.csv")


def test_the_shipped_table_is_what_the_script_generates() -> None:
    pytest.importorskip("moto")
    spec = importlib.util.spec_from_file_location(
        "refresh_caps", REPO / "scripts" / "refresh_cluster_capabilities.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["refresh_caps"] = mod
    spec.loader.exec_module(mod)
    shipped = (REPO / "provision" / "cluster" / "data" / capabilities.TABLE).read_text()
    as_of = next(iter(capabilities.table().values())).as_of.isoformat()
    types, source, _ = mod._moto_types()
    if f"moto {mod.metadata.version('moto')}" not in shipped:
        pytest.skip("the installed moto is not the one the table was generated from")
    assert mod.render(mod.rows(types, source, as_of)) == shipped
