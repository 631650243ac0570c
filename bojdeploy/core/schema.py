"""JSON Schema of manifests, for editors (yaml-language-server)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from bojdeploy.core.manifest import ContainerManifest, ServiceManifest, VMManifest


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema of one manifest document (any kind)."""
    adapter: TypeAdapter[Any] = TypeAdapter(
        Annotated[ContainerManifest | ServiceManifest | VMManifest, Field(discriminator="kind")]
    )
    schema = adapter.json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "bojdeploy manifest (apiVersion bojdeploy/v1)"
    return schema
