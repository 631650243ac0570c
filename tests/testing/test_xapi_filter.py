"""get_all_records_where: xapi's expression language over database field names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import XenAPI

from bojdeploy.testing.xapi import XapiError, XapiSimulator
from bojdeploy.testing.xapi.filter import compile_where

DEBIAN = "Debian Bookworm 12"
OTHER = "Other install media"
DOM0 = "Control domain on host: xcp-ng-sim"


@pytest.fixture(scope="module")
def xapi() -> Iterator[Any]:
    with XapiSimulator() as simulator:
        session = XenAPI.Session(simulator.url)
        session.xenapi.login_with_password("root", "", "1.0", "tests")
        yield session.xenapi


@pytest.mark.parametrize(
    "expression, names",
    [
        ('field "is_a_template" = "true"', {DEBIAN, OTHER}),
        ('field "is_a_template" = "true" and field "is_a_snapshot" = "false"', {DEBIAN, OTHER}),
        (f'field "name__label" = "{DEBIAN}"', {DEBIAN}),
        (f'"{OTHER}" = field "name__label"', {OTHER}),
        ('field "is_control_domain" = "true" or field "name__label" = "x"', {DOM0}),
        ('not field "is_a_template" = "true"', {DOM0}),
        ('not (field "is_a_template" = "true" or field "power_state" = "Running")', set()),
        ('field "VCPUs__max" = "4"', {DOM0}),
        ('field "memory__static_max" = "2147483648"', {DEBIAN, OTHER}),
        ("true", {DEBIAN, OTHER, DOM0}),
        ("false", set()),
        ("false or (true and not false)", {DEBIAN, OTHER, DOM0}),
        ('field "power_state" = "Halted" and field "is_a_template" = "false"', set()),
    ],
)
def test_expressions_select_records(xapi: Any, expression: str, names: set[str]) -> None:
    records = xapi.VM.get_all_records_where(expression)
    assert {r["name_label"] for r in records.values()} == names


def test_results_are_keyed_by_ref(xapi: Any) -> None:
    (template,) = xapi.VM.get_by_name_label(DEBIAN)
    assert list(xapi.VM.get_all_records_where(f'field "name__label" = "{DEBIAN}"')) == [template]


@pytest.mark.parametrize(
    "expression",
    ['field "is_a_template" ==', 'field is_a_template = "true"', '("a" = "a"', "maybe", ""],
)
def test_malformed_expressions_are_invalid_values(xapi: Any, expression: str) -> None:
    with pytest.raises(XenAPI.Failure) as raised:
        xapi.VM.get_all_records_where(expression)
    code, expr, reason = raised.value.details
    assert (code, expr) == ("INVALID_VALUE", expression) and reason


def test_api_field_names_are_not_database_columns(xapi: Any) -> None:
    with pytest.raises(XenAPI.Failure) as raised:
        xapi.VM.get_all_records_where('field "name_label" = "x"')
    assert raised.value.details == ["INTERNAL_ERROR", "missing field", "name_label", ""]


def test_maps_compare_in_database_form() -> None:
    matches = compile_where("VM", "field \"other_config\" = \"(('k' 'v'))\"")
    assert matches("OpaqueRef:x", {"other_config": {"k": "v"}})
    with pytest.raises(XapiError):
        compile_where("VM", "field")
