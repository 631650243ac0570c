"""A loaded manifest and its canonical form: what is hashed, shown and recorded.

The config hash decides "unchanged" on every target, so the canonical form is a contract:
changing it replaces every resource on its next push (tests/core/test_config_hash_golden.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bojdeploy.core.fields import KINDS
from bojdeploy.core.manifest import MODELS, Manifest
from bojdeploy.core.secrets import (
    MARKER_RE,
    has_markers,
    hashed,
    names_in,
    redact,
    redact_with_refs,
    restore_markers,
)
from bojdeploy.core.yamlsrc import Document


@dataclass
class LoadedManifest:
    """A validated manifest for one environment, with where it came from and what it reads."""

    manifest: Manifest
    file: str
    environment: str
    doc: Document
    dependencies: frozenset[str] = frozenset()
    files: dict[str, str] = field(default_factory=dict)
    secret_names: frozenset[str] = frozenset()

    @property
    def kind(self) -> str:
        """'container' | 'service' | 'vm'."""
        return KINDS[self.manifest.kind]

    @property
    def name(self) -> str:
        """metadata.name."""
        return self.manifest.metadata.name

    @property
    def resource_name(self) -> str:
        """The name on the target."""
        return self.manifest.resource_name

    @property
    def line(self) -> int:
        """The first line of the manifest's YAML document."""
        return self.doc.line

    def line_of(self, *path: str | int) -> int:
        """The line of a key path inside this manifest."""
        return self.doc.line_of(path)

    def canonical(self) -> dict[str, Any]:
        """The canonical rendered form (secrets as markers); the config hash is taken over it."""
        out = self._manifest_form()
        if self.files:
            out["files"] = {p: _sha256(c) for p, c in sorted(self.files.items())}
        return out

    def _manifest_form(self) -> dict[str, Any]:
        """The canonical form of the manifest alone (without the files it reads)."""
        # How a fleet is rolled out says nothing about the resource on each host. Dumped through
        # the manifest's serializer, built with its validator (the spec's own would be built
        # on its first use); the same dump as the spec's.
        spec = self.manifest.model_dump(
            mode="json", exclude_defaults=True, include={"spec"}, exclude={"spec": {"rollout"}}
        )["spec"]
        return {
            "apiVersion": "bojdeploy/v1",
            "kind": self.manifest.kind,
            "metadata": {"name": self.name, "labels": dict(self.manifest.metadata.labels)},
            "spec": spec,
        }

    def record(self) -> dict[str, Any]:
        """What the database keeps: redacted, with file contents and where secrets stood."""
        body = self.canonical()
        body["metadata"]["depends_on"] = list(self.manifest.metadata.depends_on)
        if self.files:
            body["files"] = dict(sorted(self.files.items()))
        redacted, refs = redact_with_refs(body)
        redacted["secret_refs"] = refs
        return redacted  # type: ignore[no-any-return]

    def redacted(self) -> dict[str, Any]:
        """The canonical form with secrets replaced by '***': safe to show and store."""
        body = self.canonical()
        return body if not has_markers(body) else redact(body)  # a fresh dict either way

    def config_hash(self, secret_values: Mapping[str, str], key: bytes) -> str:
        """sha256 of the canonical form, secrets as keyed hashes, keys sorted."""
        return _sha256(_hashed_text(hashed(self.canonical(), secret_values, key)))

    def redacted_and_hash(
        self, secret_values: Mapping[str, str], key: bytes
    ) -> tuple[dict[str, Any], str]:
        """redacted() and config_hash() from one canonical form (a manifest without secrets,
        most of them, needs no walk of it)."""
        body = self.canonical()
        text = _hashed_text(body)
        if "__BOJSECRET_" not in text:
            return body, _sha256(text)
        return redact(body), _sha256(_hashed_text(hashed(body, secret_values, key)))


def _hashed_text(body: Any) -> str:
    """The text the config hash is taken over."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def with_files(
    loaded: LoadedManifest, files: Mapping[str, str], names: frozenset[str] | None = None
) -> LoadedManifest:
    """`loaded` reading `files` (path -> content): its dependencies and secrets follow.
    `names`: the secrets its manifest names, when known (secret_names_of)."""
    if names is None:
        names = secret_names_of(loaded)
    loaded.files = dict(files)
    loaded.dependencies = loaded.dependencies | frozenset(files)
    in_files = {m for content in files.values() for m in MARKER_RE.findall(content)}
    loaded.secret_names = names | in_files
    return loaded


def secret_names_of(loaded: LoadedManifest) -> frozenset[str]:
    """The secrets the manifest itself names (files aside: their hashes name none)."""
    return frozenset(names_in(loaded._manifest_form()))


def manifest_from_record(config: Mapping[str, Any], file: str, environment: str) -> LoadedManifest:
    """Rebuild a LoadedManifest from a recorded config (rollback); secrets become markers again."""
    body = restore_markers(
        {k: v for k, v in config.items() if k not in ("secret_refs", "deployed", "target")},
        config.get("secret_refs") or {},
    )
    files = body.pop("files", {}) or {}
    model = MODELS[body["kind"]]
    manifest = model.model_validate(body)
    doc = Document(data=body, line=1)
    loaded = LoadedManifest(manifest=manifest, file=file, environment=environment, doc=doc)  # type: ignore[arg-type]
    return with_files(loaded, files)
