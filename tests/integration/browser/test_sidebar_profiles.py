"""The sidebar's Profile field offers the known cluster profiles with their kind."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def test_profile_field_lists_profiles_with_kind(page: Any, ui: Any, lab: Any) -> None:
    ui.open_sidebar()
    page.wait_for_function(
        "() => document.querySelectorAll('#lepton-profiles option').length >= 2",
        timeout=60_000,
    )
    options = page.eval_on_selector_all(
        "#lepton-profiles option", "els => els.map(e => [e.value, e.textContent])"
    )
    assert ["local-cpu", "local"] in options and ["local-gpu", "local-cuda"] in options
    field = page.locator(".lepton-LaunchForm .lepton-profile")
    assert field.get_attribute("list") == "lepton-profiles"
    field.fill("local-cpu")
    assert field.input_value() == "local-cpu"
