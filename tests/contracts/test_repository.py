import pytest

from contracts import RepositoryError, list_models, list_versions, next_version, validate_model_name, version_dir


def test_versions_are_positive_integers_and_temp_dirs_are_skipped(tmp_path):
    for name in ["1", "3", "10", ".4.tmp", "0", "07", "x"]:
        (tmp_path / "m" / name).mkdir(parents=True)
    assert list_versions(tmp_path / "m") == [1, 3, 10]
    assert next_version(tmp_path / "m") == 11
    assert next_version(tmp_path / "empty") == 1


@pytest.mark.parametrize("name", ["..", "../etc", "a/b", "", ".hidden", "a" * 65, "a..b"])
def test_names_cannot_escape_the_repository(name):
    with pytest.raises(RepositoryError, match="invalid model name"):
        validate_model_name(name)


def test_list_models_and_version_dir(tmp_path):
    (tmp_path / "mnist" / "1").mkdir(parents=True)
    (tmp_path / ".tmp").mkdir()
    assert list_models(tmp_path) == ["mnist"]
    assert version_dir(tmp_path, "mnist", 2) == tmp_path / "mnist" / "2"
    with pytest.raises(RepositoryError, match="positive"):
        version_dir(tmp_path, "mnist", 0)
