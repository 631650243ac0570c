"""The config hash of representative manifests, pinned.

The config hash decides "unchanged": a resource whose label carries the hash of its manifest is
left alone. Any change to the hash (canonical form, key order, defaults, how secrets or files are
folded in) therefore replaces every resource of every repository on its next push. Such a change
must be deliberate: update the hashes below in the same commit and say so in docs/manifests.md
("Config hash") and the release notes. A refactor must leave them as they are.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bojdeploy.core.config import load_config
from bojdeploy.core.files import RepoFiles
from bojdeploy.core.loaded import LoadedManifest, manifest_from_record
from bojdeploy.core.template import RenderContext
from bojdeploy.core.validation import load_manifests

REPO = Path(__file__).parents[1] / "cases" / "golden"
KEY = b"golden-installation-key"
SECRETS = {"DB_PASSWORD": "s3cret-db", "API_TOKEN": "tok-123", "BUILD_TOKEN": "build-456"}
GIT = {
    "sha": "0123456789abcdef0123456789abcdef01234567",
    "short_sha": "0123456",
    "branch": "main",
    "ref": "refs/heads/main",
    "repository": "team/app",
}

# environment/kind/name -> config hash with SECRETS set.
GOLDEN: dict[str, str] = {
    "production/container/minimal": "72dac1573e9947551bff903bb7b075d99427a874e9c7aec618ecb9093a2b0999",  # noqa: E501
    "production/container/web": "d34d0a666fcb656f610b97b266b9dae630bfdd84750c97d01722ca1749f0f187",
    "production/service/agent": "e3c034a3a94871e8ac395e0eb82581b6865b7f5b2843f9abb767f02462e5b339",
    "production/service/api": "6d14b8b894a3d929cfa987eec605596ba1d2fcf8726a282a3aa0793b5c55bd02",
    "production/vm/builder": "02d75db6938dcd57c3dfbfc04ef5b5cbd2cc943262b8b8422ececaaaab49acea",
    "production/vm/small": "cce169b26915604787ace247e92383b6a0253462729fd5a6411e9847f5c56ebd",
    "staging/container/minimal": "72dac1573e9947551bff903bb7b075d99427a874e9c7aec618ecb9093a2b0999",
    "staging/container/web": "3dab2ac0088636eedb42036585b66c3f3cecfd583a7a506355d77fb1683b40c4",
    "staging/container/worker": "185a7c7295bcc772068c85c55dcdbf1903e4d13207eb21893f44a19c4c3e9f0b",
    "staging/service/agent": "e3c034a3a94871e8ac395e0eb82581b6865b7f5b2843f9abb767f02462e5b339",
    "staging/service/api": "05ad42fbccd20558783a14cdc4c6aa9571e1eab655262418dbf2b2b44c8ba337",
    "staging/vm/builder": "a087125b36c26c9bd0883a56b063baf761e941026c2c811f54bb617681704f39",
    "staging/vm/small": "cce169b26915604787ace247e92383b6a0253462729fd5a6411e9847f5c56ebd",
}

# environment/kind/name -> config hash when no secret is set (a pull request from a fork).
GOLDEN_NO_SECRETS: dict[str, str] = {
    "production/container/minimal": "72dac1573e9947551bff903bb7b075d99427a874e9c7aec618ecb9093a2b0999",  # noqa: E501
    "production/container/web": "0e8b29ef0e43a08e8e9de1003fa5241325260108eabfb46d7b11db34adfd1a34",
    "production/service/agent": "e3c034a3a94871e8ac395e0eb82581b6865b7f5b2843f9abb767f02462e5b339",
    "production/service/api": "56c52e6b3a857308fe2fb9e2d4b337b581178eec9c272af7ecccafb0295c656f",
    "production/vm/builder": "02d75db6938dcd57c3dfbfc04ef5b5cbd2cc943262b8b8422ececaaaab49acea",
    "production/vm/small": "cce169b26915604787ace247e92383b6a0253462729fd5a6411e9847f5c56ebd",
    "staging/container/minimal": "72dac1573e9947551bff903bb7b075d99427a874e9c7aec618ecb9093a2b0999",
    "staging/container/web": "5167c716af9eb1016b1894a9b97033212694fd3d676be77c2b23ad01aecb48de",
    "staging/container/worker": "185a7c7295bcc772068c85c55dcdbf1903e4d13207eb21893f44a19c4c3e9f0b",
    "staging/service/agent": "e3c034a3a94871e8ac395e0eb82581b6865b7f5b2843f9abb767f02462e5b339",
    "staging/service/api": "adc2cea1a19114a35a12f947b05360718d947547ee631d070d8d82399ce2d931",
    "staging/vm/builder": "a087125b36c26c9bd0883a56b063baf761e941026c2c811f54bb617681704f39",
    "staging/vm/small": "cce169b26915604787ace247e92383b6a0253462729fd5a6411e9847f5c56ebd",
}


def load(environment: str) -> list[LoadedManifest]:
    config, problems = load_config(REPO)
    assert config is not None and problems == []
    files = sorted(
        p.relative_to(REPO).as_posix() for p in (REPO / "deploy").rglob("*") if p.is_file()
    )
    ctx = RenderContext(
        environment, GIT, config.vars_for(environment), SECRETS, tuple(config.environments)
    )
    result = load_manifests(RepoFiles(REPO), files, ctx, config, require_secrets=True)
    assert result.problems == []
    return result.manifests


def hashes(environment: str, secrets: dict[str, str]) -> dict[str, str]:
    out = {}
    for m in load(environment):
        values = {k: v for k, v in secrets.items() if k in m.secret_names}
        out[f"{environment}/{m.kind}/{m.name}"] = m.config_hash(values, KEY)
    return out


@pytest.mark.parametrize("environment", ["production", "staging"])
def test_config_hashes_are_pinned(environment: str) -> None:
    expected = {k: v for k, v in GOLDEN.items() if k.startswith(environment + "/")}
    assert hashes(environment, SECRETS) == expected


@pytest.mark.parametrize("environment", ["production", "staging"])
def test_config_hashes_without_secrets_are_pinned(environment: str) -> None:
    expected = {k: v for k, v in GOLDEN_NO_SECRETS.items() if k.startswith(environment + "/")}
    assert hashes(environment, {}) == expected


def test_a_secret_value_changes_the_hash_of_the_manifest_that_reads_it() -> None:
    changed = hashes("production", {**SECRETS, "API_TOKEN": "tok-456"})
    before = hashes("production", SECRETS)
    assert {k for k in before if before[k] != changed[k]} == {"production/service/api"}


@pytest.mark.parametrize("environment", ["production", "staging"])
def test_a_recorded_config_rebuilds_the_same_hash(environment: str) -> None:
    """Rollback rebuilds a manifest from its record: it must hash as the manifest did."""
    for m in load(environment):
        values = {k: v for k, v in SECRETS.items() if k in m.secret_names}
        again = manifest_from_record(m.record(), m.file, environment)
        assert again.config_hash(values, KEY) == GOLDEN[f"{environment}/{m.kind}/{m.name}"]
