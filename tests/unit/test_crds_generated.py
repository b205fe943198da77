"""crds/ is generated from the API's models (`make crds`): what is committed is what they say."""
from __future__ import annotations

from pathlib import Path

import yaml

from execplanner.api import crds
from execplanner.api.plan import PlanSpec

ROOT = Path(__file__).resolve().parents[2]


def test_committed_crds_are_the_generated_ones():
    for name in crds.CRDS:
        assert (ROOT / "crds" / name).read_text() == crds.render(name), f"crds/{name} is stale: run `make crds`"
    assert sorted(p.name for p in (ROOT / "crds").glob("*.yaml")) == sorted(crds.CRDS)


def test_check_mode_notices_a_stale_file(tmp_path: Path):
    assert crds.main(["--out", str(tmp_path)]) == 0  # writes
    assert crds.main(["--out", str(tmp_path), "--check"]) == 0
    name = next(iter(crds.CRDS))
    (tmp_path / name).write_text((tmp_path / name).read_text().replace("Fewest cores", "Most cores"))
    assert crds.main(["--out", str(tmp_path), "--check"]) == 1


def test_a_field_description_reaches_the_crd():
    schema = yaml.safe_load(crds.render("executionplans.execplanner.io.yaml"))
    spec = schema["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    field = PlanSpec.model_fields["offers"]
    assert spec["properties"]["offers"]["description"] == field.description
    assert spec["properties"]["offers"]["default"] == field.default == 1
    assert spec["properties"]["offers"]["maximum"] == 10


def test_the_models_read_the_examples():
    for path in sorted((ROOT / "examples").glob("plan-*.yaml")):
        PlanSpec.model_validate(yaml.safe_load(path.read_text())["spec"])
