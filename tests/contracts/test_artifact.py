import json

import numpy as np
import pytest

from contracts import (
    Architecture,
    ArtifactError,
    LayerSpec,
    ModelSpec,
    load_artifact,
    save_artifact,
)


def tiny_spec() -> ModelSpec:
    arch = Architecture(input_shape=(2, 3), layers=(LayerSpec(units=4), LayerSpec(units=3, activation="linear")))
    return ModelSpec(architecture=arch, labels=("a", "b", "c"))


def tiny_weights(spec: ModelSpec) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in spec.architecture.parameter_shapes().items()}


def test_round_trip_keeps_spec_and_weights(tmp_path):
    spec, weights = tiny_spec(), tiny_weights(tiny_spec())
    save_artifact(tmp_path / "a", spec, weights)
    loaded_spec, loaded = load_artifact(tmp_path / "a")
    assert loaded_spec == spec
    assert set(loaded) == {"dense_0/kernel", "dense_0/bias", "dense_1/kernel", "dense_1/bias"}
    for k in weights:
        np.testing.assert_array_equal(loaded[k], weights[k])
        assert loaded[k].dtype == np.float32


def test_existing_artifact_is_not_overwritten_and_no_temp_dir_is_left(tmp_path):
    spec = tiny_spec()
    save_artifact(tmp_path / "a", spec, tiny_weights(spec))
    before = (tmp_path / "a" / "weights.npz").read_bytes()
    with pytest.raises(FileExistsError):
        save_artifact(tmp_path / "a", spec, {k: v + 1 for k, v in tiny_weights(spec).items()})
    assert (tmp_path / "a" / "weights.npz").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a"]


def test_weights_that_disagree_with_model_json_are_refused(tmp_path):
    spec = tiny_spec()
    weights = tiny_weights(spec)
    weights["dense_0/kernel"] = np.zeros((5, 4), np.float32)
    with pytest.raises(ArtifactError, match=r"dense_0/kernel has shape \(5, 4\), model.json says \(6, 4\)"):
        save_artifact(tmp_path / "a", spec, weights)
    assert not (tmp_path / "a").exists()


def test_truncated_weights_and_bad_json_are_named(tmp_path):
    spec = tiny_spec()
    save_artifact(tmp_path / "a", spec, tiny_weights(spec))
    npz = tmp_path / "a" / "weights.npz"
    npz.write_bytes(npz.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="corrupt or truncated weights"):
        load_artifact(tmp_path / "a")
    (tmp_path / "a" / "model.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="model.json: not valid JSON"):
        load_artifact(tmp_path / "a")


def test_label_count_must_match_output_units():
    with pytest.raises(ValueError, match="2 labels for an output layer of 3 units"):
        ModelSpec(architecture=tiny_spec().architecture, labels=("a", "b"))


def test_unknown_schema_version_is_refused(tmp_path):
    spec = tiny_spec()
    save_artifact(tmp_path / "a", spec, tiny_weights(spec))
    doc = json.loads((tmp_path / "a" / "model.json").read_text())
    doc["schema_version"] = 99
    (tmp_path / "a" / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="schema_version 99 is not supported"):
        load_artifact(tmp_path / "a")
