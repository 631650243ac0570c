"""Loading reads files only through the reader it is given: a dictionary serves as well."""

from __future__ import annotations

import posixpath

from bojdeploy.core.config import RepoConfig
from bojdeploy.core.files import RepoFileError
from bojdeploy.core.template import RenderContext
from bojdeploy.core.validation import load_manifests


class DictFiles:
    """A repository held in a dictionary: path -> text."""

    def __init__(self, files: dict[str, str]):
        self.files = files
        self.reads: list[str] = []

    def path_of(self, rel: str) -> str:
        norm = posixpath.normpath(rel)
        if norm.startswith(("../", "/")) or norm == "..":
            raise RepoFileError(f"{rel!r} escapes the repository")
        return norm

    def read(self, rel: str) -> str:
        self.reads.append(rel)
        try:
            return self.files[self.path_of(rel)]
        except KeyError:
            raise RepoFileError(f"{rel!r} does not exist in the repository") from None


SERVICE = """\
apiVersion: bojdeploy/v1
kind: Service
metadata: {name: api}
spec:
  image: "registry:5000/api:{{ include('VERSION') }}"
  env: {TOKEN: "{{ secret('API_TOKEN') }}"}
  configs: [{source: ./config/../config/api.conf, target: /etc/api.conf}]
"""


def ctx() -> RenderContext:
    return RenderContext("production", {"short_sha": "abc1234"}, {}, {"API_TOKEN": "t"})


def test_a_manifest_loads_from_a_dictionary() -> None:
    files = DictFiles(
        {"deploy/api.yml": SERVICE, "VERSION": "2.1\n", "config/api.conf": "workers = 4\n"}
    )
    result = load_manifests(files, ["deploy/api.yml"], ctx(), RepoConfig())
    assert result.problems == []
    (api,) = result.manifests
    assert api.manifest.spec.image == "registry:5000/api:2.1"
    assert api.files == {"config/api.conf": "workers = 4\n"}
    assert api.dependencies == {"VERSION", "config/api.conf"}
    assert api.secret_names == {"API_TOKEN"}
    assert set(files.reads) == {"deploy/api.yml", "VERSION", "./config/../config/api.conf"}


def test_a_file_the_reader_refuses_is_a_problem_at_its_key() -> None:
    files = DictFiles({"deploy/api.yml": SERVICE, "VERSION": "2.1\n"})
    result = load_manifests(files, ["deploy/api.yml"], ctx(), RepoConfig())
    assert [(p.file, p.line, p.path) for p in result.problems] == [
        ("deploy/api.yml", 7, "spec.configs[0].source")
    ]
    assert "does not exist" in result.problems[0].message


def test_a_missing_manifest_is_a_problem_of_that_file() -> None:
    result = load_manifests(DictFiles({}), ["deploy/gone.yml"], ctx(), RepoConfig())
    assert [(p.file, p.line) for p in result.problems] == [("deploy/gone.yml", 1)]
