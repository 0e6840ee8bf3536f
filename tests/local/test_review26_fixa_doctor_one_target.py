"""`goldgate doctor` given two things to check checked one. `goldgate doctor --stack staging --model-root DIR`
checked the stack's image, printed "worker preflight: OK" and exited 0 with DIR never looked at (an empty one, here);
`--image X --stack S` checked X only. Every other command refuses a flag it would ignore: doctor now refuses the
combination in one line naming the flags, exits 1, and checks nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate.cli import main
from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.state import StackDir


@pytest.fixture()
def healthy(tmp_path: Path) -> tuple[Path, str, Path]:
    """A home whose STAGING pins an image with every model baked, and a model root with no model in it."""
    home = tmp_path / "home"
    image = image_store.build_local_image(WORKER_SOURCE, home)
    StackDir(home, "staging").pin(image, reason="test")
    empty = tmp_path / "models"
    (empty / "checkpoints").mkdir(parents=True)
    return home, image, empty


@pytest.mark.parametrize("targets, named", [
    (lambda image, empty: ["--stack", "staging", "--model-root", str(empty)], "--stack and --model-root"),
    (lambda image, empty: ["--image", image, "--model-root", str(empty)], "--image and --model-root"),
    (lambda image, empty: ["--image", image, "--stack", "prod"], "--stack and --image"),
    (lambda image, empty: ["--stack", "staging", "--image", image, "--model-root", str(empty)],
     "--stack, --image and --model-root"),
], ids=["stack+model-root", "image+model-root", "image+stack", "all three"])
def test_doctor_refuses_two_things_to_check_instead_of_checking_one(healthy, capsys, targets, named) -> None:
    home, image, empty = healthy
    code = main(["doctor", *targets(image, empty), "--home", str(home)])
    out, err = capsys.readouterr()
    # Before: 0, and "worker preflight: OK" for the image, with the empty model root (or the other stack) unchecked
    assert code == 1, out
    assert "OK" not in out and out == "", out
    assert err.count("\n") == 1 and f"{named} each name what to check" in err and "give one of them" in err, err


def test_each_target_alone_is_still_checked(healthy, capsys) -> None:
    home, image, empty = healthy
    assert main(["doctor", "--stack", "staging", "--home", str(home)]) == 0
    assert main(["doctor", "--image", image, "--home", str(home)]) == 0
    assert main(["doctor", "--model-root", str(empty), "--model-root", str(empty), "--home", str(home)]) == 1
    assert "sd_xl_base_1.0.safetensors" in capsys.readouterr().out
