"""The declarative fault spec: JSON round trips, validation, presets, the CLI syntax."""

from __future__ import annotations

import argparse

import orjson
import pytest

from syncd.simulator import __main__ as cli
from syncd.simulator import fault_presets, server
from syncd.simulator.fault_plan import SeededFaultPlan
from syncd.simulator.fault_spec import (
    TOKEN_PATHS,
    CutParams,
    FaultSpec,
    OutageParams,
    Rule,
    SpecError,
    StatusParams,
    spec_from_json,
)


def test_specs_round_trip_through_json() -> None:
    spec = (
        fault_presets.dirty_network(20, paths=["/v1/*"], accounts=["a"])
        + fault_presets.storm_429(60)
        + fault_presets.outage(120, start_s=30, mode="reset")
        + fault_presets.token_outage(10, mode="timeout")
        + fault_presets.revoke_tokens(at_request=100)
        + fault_presets.tighten_limits(0.5, at_s=10)
    ).with_seed(42)
    text = orjson.dumps(spec.to_json())
    assert spec_from_json(orjson.loads(text)) == spec
    assert spec_from_json(orjson.loads(text)).to_json() == spec.to_json()


def test_json_defaults_and_shorthands() -> None:
    spec = spec_from_json(
        [
            {"kind": "status", "probability": 0.5, "paths": "/v1/listings", "params": {"statuses": 503}},
            {"kind": "token_outage"},
            {"kind": "truncated", "params": {"min_fraction": 0.2}},
        ],
        default_seed=9,
    )
    assert spec.seed == 9
    first, token, cut = spec.rules
    assert first == Rule("status", 0.5, ("/v1/listings",), params=StatusParams((503,)))
    assert token.paths == TOKEN_PATHS and token.params == OutageParams()
    assert cut.params == CutParams(0.2, 0.9)


@pytest.mark.parametrize(
    "bad",
    [
        {"rules": [{"kind": "gremlins"}]},
        {"rules": [{"kind": "status", "probability": 1.5}]},
        {"rules": [{"kind": "status", "probability": "often"}]},
        {"rules": [{"kind": "status", "start_s": 10, "end_s": 5}]},
        {"rules": [{"kind": "status", "from_request": -1}]},
        {"rules": [{"kind": "status", "params": {"statuses": [99]}}]},
        {"rules": [{"kind": "status", "params": {"seconds": 1}}]},
        {"rules": [{"kind": "status", "colour": "red"}]},
        {"rules": [{"kind": "revoke_tokens", "probability": 0.5}]},
        {"rules": [{"kind": "rate_limit", "params": {"form": "smoke-signals"}}]},
        {"rules": [{"kind": "outage", "params": {"mode": "flood"}}]},
        {"rules": [{"kind": "reset", "params": {"min_fraction": 0.9, "max_fraction": 0.1}}]},
        {"rules": [{"kind": "slow_body", "params": {"chunks": 0}}]},
        {"rules": [{"kind": "tighten_limits", "params": {"factor": 0}}]},
        {"rules": [{"kind": "tighten_limits", "params": {"advertise_documented": "yes"}}]},
        {"rules": "status"},
        {"seed": "x", "rules": []},
        {"rules": [], "extra": 1},
        "dirty",
    ],
)
def test_invalid_specs_are_refused(bad: object) -> None:
    with pytest.raises(SpecError):
        spec_from_json(bad)


def test_rules_check_their_params_type() -> None:
    with pytest.raises(SpecError):
        Rule("timeout", params=StatusParams())
    assert Rule("timeout").params is not None


def test_presets_and_the_cli_syntax() -> None:
    assert fault_presets.from_preset("dirty") == fault_presets.dirty_network(20)
    assert fault_presets.from_preset("storm:90", seed=4) == fault_presets.storm_429(90).with_seed(4)
    combined = fault_presets.from_preset("outage:120, token-outage:5,revoke:30,tighten:0.25")
    assert [r.kind for r in combined.rules] == ["outage", "token_outage", "revoke_tokens", "tighten_limits"]
    assert combined.rules[0].end_s == 120 and combined.rules[2].start_s == 30
    confined = fault_presets.from_preset("storm:60@acme+other,dirty")
    assert [r.partners for r in confined.rules[:2]] == [("acme", "other")] * 2
    assert all(r.partners is None for r in confined.rules[2:])
    for bad in ("chaos:1", "dirty:lots", "dirty:150", "storm@"):
        with pytest.raises(SpecError):
            fault_presets.from_preset(bad)
    assert fault_presets.ROW6_PERCENT == 42.0


def test_cli_flags_build_a_seeded_plan() -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert "storm[:N]" in parser.format_help()
    args = parser.parse_args(["--faults", "dirty:20", "--faults", "storm:60", "--fault-seed", "5"])
    options = cli.options_from_args(args)
    assert options.faults == (fault_presets.dirty_network(20) + fault_presets.storm_429(60)).with_seed(5)
    sim = server.build_simulator(server.SimulateOptions(listings=3, faults=options.faults))
    assert isinstance(sim.runtime.faults, SeededFaultPlan) and sim.runtime.faults.spec.seed == 5
    assert cli.options_from_args(parser.parse_args([])).faults is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--faults", "gremlins:3"])


def test_set_faults_accepts_specs_plans_and_none() -> None:
    sim = server.Simulator()
    plan = sim.set_faults(FaultSpec((Rule("status"),)))
    assert isinstance(plan, SeededFaultPlan) and sim.runtime.faults is plan
    sim.set_faults(None)
    assert sim.runtime.faults is not plan
