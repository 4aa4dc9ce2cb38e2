"""prefect.yaml against the flows it deploys, without a server: every deployment's parameters and every
trigger's parameters, rendered by Prefect's own template code for a finished upstream run, fit the
entrypoint flow's parameter schema (a stage renamed in a flow, or a template that renders wrong, would
otherwise only show as a chain that silently stops: the automation's run is refused), and a triggered run
gets the data root the upstream run really used."""

from __future__ import annotations

import copy
import uuid
from functools import cache
from typing import Any

import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint
from prefect.server.events.actions import RunDeployment
from prefect.server.schemas.responses import FlowRunResponse
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools import HydrationContext, hydrate, validate
from prefect.utilities.schema_tools.validation import ValidationError

from tests.deploy.prefect_procs import ROOT

SPEC = yaml.safe_load((ROOT / "prefect.yaml").read_text())
DEPLOYMENTS = {d["name"]: d for d in SPEC["deployments"]}
TRIGGERED = [(d["name"], i) for d in SPEC["deployments"] for i, _ in enumerate(d.get("triggers", []))]


@cache
def _schema(entrypoint: str) -> dict[str, Any]:
    flow = load_flow_from_entrypoint(str(ROOT / entrypoint))
    return parameter_schema(flow.fn).model_dump_for_openapi()


def _upstream_run(parameters: dict[str, Any], job_variables: dict[str, Any] | None) -> FlowRunResponse:
    """The finished run whose Completed event fires a trigger, as the automation reads it from the API."""
    return FlowRunResponse(
        flow_id=uuid.uuid4(), parameters=parameters, job_variables=job_variables, state_type="COMPLETED"
    )


def _render(parameters: dict[str, Any], upstream: FlowRunResponse) -> dict[str, Any]:
    """The parameters a trigger's run-deployment action creates its run with: Prefect's own steps
    (RunDeployment.render_parameters without the API calls that fetch the upstream run)."""
    params = copy.deepcopy(parameters)
    RunDeployment._upgrade_v1_templates(params)
    ctx = HydrationContext(raise_on_error=True, render_jinja=True, jinja_context={"flow_run": upstream})
    return hydrate(params, ctx)


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_deployment_parameters_fit_the_flow_signature(name: str) -> None:
    deployment = DEPLOYMENTS[name]
    schema = _schema(deployment["entrypoint"])
    given = deployment.get("parameters") or {}
    assert set(given) <= set(schema["properties"]), f"{name}: parameters the flow does not take"
    validate(given, schema, raise_on_error=True, ignore_required=True)


@pytest.mark.parametrize(("name", "index"), TRIGGERED)
@pytest.mark.parametrize(
    ("parameters", "job_variables", "root"),
    [
        ({}, None, None),  # a scheduled run: the deployment's job variables give every run its root
        ({"data_root": "/data/a"}, {}, "/data/a"),
        ({}, {"env": {"HOWTO_DATA_ROOT": "/mnt/override"}}, "/mnt/override"),  # --job-variable env=...
        ({"data_root": "/data/a"}, {"env": {"HOWTO_DATA_ROOT": "/mnt/override"}}, "/data/a"),
        ({}, {"env": {"OTHER": "1"}}, None),
    ],
)
def test_triggered_run_gets_the_upstream_runs_data_root_and_settings(
    name: str, index: int, parameters: dict[str, Any], job_variables: dict[str, Any] | None, root: str | None
) -> None:
    deployment = DEPLOYMENTS[name]
    cfg = {"tasks": {"max_articles": 3}, "runner": {"part": 1, "parts": 2}}
    upstream = _upstream_run({**parameters, "cfg": cfg, "stages": ["tasks"]}, job_variables)
    rendered = _render(deployment["triggers"][index]["parameters"], upstream)
    assert rendered["data_root"] == root
    assert rendered["cfg"] == cfg and rendered["stages"] == deployment["parameters"]["stages"]
    validate(rendered, _schema(deployment["entrypoint"]), raise_on_error=True, ignore_required=True)
    # A scheduled upstream run with no cfg of its own: the stage defaults.
    assert _render(deployment["triggers"][index]["parameters"], _upstream_run({}, None))["cfg"] == {}


@pytest.mark.parametrize("entrypoint", ["flows/pipeline.py:pipeline", "flows/recrawl.py:recrawl"])
def test_a_run_with_an_empty_stage_list_is_refused_when_it_is_created(entrypoint: str) -> None:
    """`stages: []` (every stage unticked in the run form) read as "not given": a `collect` run did every
    stage, features and training included, on the CPU pool. The server validates a deployment run's
    parameters with this code (`validate`) against the flow's schema and refuses the run."""
    schema = _schema(entrypoint)
    with pytest.raises(ValidationError, match=r"field 'stages'.*(non-empty|too short)"):
        validate({"stages": []}, schema, raise_on_error=True, ignore_required=True)
    validate({"stages": ["search"]}, schema, raise_on_error=True, ignore_required=True)
