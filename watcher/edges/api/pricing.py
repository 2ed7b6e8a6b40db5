"""Parsing the models list and the model catalog into the prices `watcher.core.cost` uses.

`GET /v2/gen-ai/models` items are `apiModelPublic` (`uuid`, `id` = API name, `name`,
`pricing`); `GET /v2/gen-ai/models/catalog` items (under `data`, not `models`) are
`apiModelCatalogEntry` (`model_id` = API name, `pricing`, `scaled_pricing_enabled`; no `uuid`).
`pricing.input_price_per_million` is a JSON number with no currency; a string holding a number
is accepted, anything else is "no price". An entry without its key field is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from watcher.core.cost import CatalogModel, ListedModel
from watcher.edges.api.wire import SkippedItem, to_bool, to_str

MODELS = "/v2/gen-ai/models"
CATALOG = "/v2/gen-ai/models/catalog"
EMBEDDING_USECASE = "MODEL_USECASE_KNOWLEDGEBASE"


def input_price(obj: Mapping[str, Any]) -> float | None:
    """`pricing.input_price_per_million` as a finite, non-negative float, else None."""
    pricing = obj.get("pricing")
    if not isinstance(pricing, Mapping):
        return None
    raw = pricing.get("input_price_per_million")
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def parse_listed_model(obj: object) -> ListedModel:
    """One models-list entry; `SkippedItem` without a `uuid`."""
    if not isinstance(obj, Mapping):
        raise SkippedItem(f"model is a {type(obj).__name__}, not an object")
    uuid = to_str(obj.get("uuid"))
    if not uuid:
        raise SkippedItem("model has no uuid")
    return ListedModel(
        uuid=uuid,
        id=to_str(obj.get("id")),
        name=to_str(obj.get("name")),
        input_price_per_million=input_price(obj),
    )


def parse_catalog_model(obj: object) -> CatalogModel:
    """One catalog entry; `SkippedItem` without a `model_id`."""
    if not isinstance(obj, Mapping):
        raise SkippedItem(f"catalog entry is a {type(obj).__name__}, not an object")
    model_id = to_str(obj.get("model_id"))
    if not model_id:
        raise SkippedItem("catalog entry has no model_id")
    return CatalogModel(
        model_id=model_id,
        name=to_str(obj.get("name")),
        input_price_per_million=input_price(obj),
        scaled_pricing=bool(to_bool(obj.get("scaled_pricing_enabled"))),
    )
