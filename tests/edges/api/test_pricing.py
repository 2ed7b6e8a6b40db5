"""Reading prices from the models list and the catalog: the API's numbers, or no price."""

from __future__ import annotations

import pytest

from watcher.core.cost import CatalogModel, ListedModel
from watcher.edges.api.pricing import input_price, parse_catalog_model, parse_listed_model
from watcher.edges.api.wire import SkippedItem


@pytest.mark.parametrize(
    ("pricing", "expected"),
    [
        # a JSON number, as the spec declares it
        ({"input_price_per_million": 0.09}, 0.09),
        # an integer is a number too
        ({"input_price_per_million": 1}, 1.0),
        # a string holding a number is read (DigitalOcean sends counters as strings)
        ({"input_price_per_million": "0.02"}, 0.02),
        # absent: no price
        ({}, None),
        # not a number, a boolean, negative or not finite: no price, never a guess
        ({"input_price_per_million": "cheap"}, None),
        ({"input_price_per_million": True}, None),
        ({"input_price_per_million": -1}, None),
        ({"input_price_per_million": "nan"}, None),
    ],
)
def test_the_input_price_per_million_is_a_non_negative_number_or_none(
    pricing: dict[str, object], expected: float | None
) -> None:
    assert input_price({"pricing": pricing}) == expected


def test_a_listed_model_and_a_catalog_entry_are_read_and_one_without_its_key_is_skipped() -> None:
    listed = {"uuid": "u", "id": "gte", "name": "GTE", "pricing": {"input_price_per_million": 0.1}}
    assert parse_listed_model(listed) == ListedModel("u", "gte", "GTE", 0.1)
    entry = {"id": "x", "model_id": "gte", "scaled_pricing_enabled": True, "pricing": None}
    assert parse_catalog_model(entry) == CatalogModel("gte", None, None, True)
    with pytest.raises(SkippedItem):
        parse_listed_model({"id": "gte"})
    with pytest.raises(SkippedItem):
        parse_catalog_model({"id": "x"})
