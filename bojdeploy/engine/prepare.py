"""Load, validate and select: the manifests of one environment that a run considers."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from bojdeploy.core.changes import Selected, Selection
from bojdeploy.core.loaded import LoadedManifest
from bojdeploy.core.plan import Desired
from bojdeploy.core.secrets import secret_env
from bojdeploy.core.validation import LoadResult, dependency_levels
from bojdeploy.engine.workspace import Compare, Workspace
from bojdeploy.errors import ManifestError, UsageError


@dataclass
class Prepared:
    """Validated manifests of one environment and the ones this run considers."""

    workspace: Workspace
    environment: str
    result: LoadResult
    selection: Selection
    selected: list[LoadedManifest]
    narrowed: bool = False  # only manifests named explicitly
    # (kind, name) -> the values of the secrets it uses, read once for every manifest loaded
    secrets: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def secrets_of(self, m: LoadedManifest) -> dict[str, str]:
        """The values of the secrets `m` uses (missing ones left out)."""
        return self.secrets.get((m.kind, m.name), {})

    @property
    def secret_texts(self) -> list[str]:
        """Every secret value this run knows: what logs must never show."""
        return [v for values in self.secrets.values() for v in values.values()]

    @property
    def warnings(self) -> list[str]:
        """Human warnings (missing secrets for a plan, fallbacks of change detection)."""
        chosen = set(self.selection.paths())
        out = [str(p) for p in self.result.warnings if p.file in chosen]
        if not self.workspace.manifest_files():
            out.append(self.workspace.nothing_found())
        if self.selection.note:
            out.append(self.selection.note)
        return out


def prepare(
    ws: Workspace,
    environment: str,
    environ: Mapping[str, str],
    *,
    changed_since: str | None = None,
    require_secrets: bool = False,
    fallback: Compare | None = None,
    names: Collection[str] = (),
) -> Prepared:
    """Load and validate everything, then select (only `names` if given); raises ManifestError."""
    result = ws.load(environment, environ)
    selection = ws.select(result, changed_since, fallback)
    if names:
        selection = narrow(selection, result, names, environment)
    chosen = set(selection.paths())
    if require_secrets:
        result.problems = [
            dataclasses.replace(p, warning=False) if p.warning and p.file in chosen else p
            for p in result.problems
        ]
    if result.errors:
        raise ManifestError(sorted(result.errors))
    ordered = [m for level in dependency_levels(result.manifests) for m in level]
    selected = [m for m in ordered if m.file in chosen and (not names or m.name in names)]
    secrets = {(m.kind, m.name): secret_values(m, environ) for m in result.manifests}
    return Prepared(
        ws, environment, result, selection, selected, narrowed=bool(names), secrets=secrets
    )


def narrow(
    selection: Selection, result: LoadResult, names: Collection[str], environment: str
) -> Selection:
    """Only the manifests called `names` (never a full selection: nothing else is pruned)."""
    chosen = sorted({m.file for m in result.manifests if m.name in names})
    missing = sorted(set(names) - {m.name for m in result.manifests})
    if missing:
        raise UsageError(f"no manifest named {', '.join(missing)} in environment {environment}")
    why = f"{', '.join(sorted(names))} named explicitly"
    return Selection(tuple(Selected(p, selection.reason_for(p) or why) for p in chosen), (), False)


def secret_values(m: LoadedManifest, environ: Mapping[str, str]) -> dict[str, str]:
    """The values of the secrets a manifest uses (missing ones left out)."""
    values = {name: secret_env(name, environ) for name in m.secret_names}
    return {k: v for k, v in values.items() if v is not None}


def desired_state(prepared: Prepared, key: bytes) -> list[Desired]:
    """The selected manifests as Desired values (redacted spec, keyed config hash)."""
    return [
        to_desired(m, prepared.secrets_of(m), key, prepared.selection.reason_for(m.file) or "")
        for m in prepared.selected
    ]


def to_desired(
    m: LoadedManifest, values: Mapping[str, str], key: bytes, reason: str = ""
) -> Desired:
    """One manifest as a Desired value: what apply and rollback both plan with."""
    redacted, config_hash = m.redacted_and_hash(values, key)
    return Desired(
        kind=m.kind,
        name=m.name,
        environment=m.environment,
        resource_name=m.resource_name,
        config_hash=config_hash,
        spec=redacted["spec"],
        labels=redacted["metadata"]["labels"],
        manifest=m.file,
        reason=reason,
        depends_on=tuple(m.manifest.metadata.depends_on),
        missing_secrets=tuple(sorted(m.secret_names - set(values))),
    )
