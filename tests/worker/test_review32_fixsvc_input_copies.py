"""The GPU worker's image carries its own copies of what POST /api/inputs decides (it imports nothing of service/):
the content types an upload is stored with, the most bytes one has, and which keys name one. Held equal here, so a
change on one side that the other misses (a fourth type, a larger limit, a looser key) fails a test rather than a
job on a GPU after the API took its image."""

from __future__ import annotations

import pytest

from images.worker import storage, workflows
from service import config as service_config
from service import inputs as service_inputs

HEX = "0123456789abcdef" * 2
KEYS = [
    f"inputs/{HEX}.png", f"inputs/{HEX}.jpg", f"inputs/{HEX}.webp",
    f"inputs/{HEX}.png\n", f"inputs/{HEX}.jpg\r\n", f" inputs/{HEX}.png", f"inputs/{HEX}.png ",
    f"inputs/{HEX.upper()}.png", f"inputs/{HEX[:31]}.png", f"inputs/{HEX}0.png", f"inputs/{HEX}.jpeg",
    f"inputs/{HEX}.gif", f"inputs/{HEX}.PNG", f"results/{HEX}/0.png", f"inputs/../{HEX}.png", f"{HEX}.png",
    f"inputs/{HEX}.png/x", f"inputs//{HEX}.png", f"inputs/{HEX[:-1]}g.png", "",
]


def test_the_worker_reads_inputs_of_the_types_the_api_stores_with_the_same_extensions() -> None:
    assert storage.INPUT_CONTENT_TYPES == {content_type: f".{extension}" for content_type, extension
                                           in service_inputs.EXTENSIONS.items()}


def test_the_worker_reads_an_input_as_large_as_the_api_takes() -> None:
    assert storage.MAX_INPUT_BYTES == service_config.MAX_INPUT_BYTES


@pytest.mark.parametrize("key", KEYS, ids=repr)
def test_the_worker_takes_exactly_the_keys_the_api_takes_for_an_image_parameter(key: str) -> None:
    # Each side as it checks a value: the service's create (service/workflows.py) with match, the worker's job input
    # (images/worker/workflows.py) with fullmatch.
    api_takes = service_inputs.INPUT_KEY.match(key) is not None
    assert (workflows.INPUT_KEY.fullmatch(key) is not None) == api_takes, (key, api_takes)


def test_every_type_the_api_stores_names_a_key_the_worker_takes() -> None:
    for extension in service_inputs.EXTENSIONS.values():
        key = f"inputs/{HEX}.{extension}"
        assert service_inputs.INPUT_KEY.match(key) and workflows.INPUT_KEY.fullmatch(key), key
