"""`COPY --chmod=644 models/ /comfyui/models/` gives the directories mode 644 too: the worker's user (uid 10001)
can list them but not open anything in them. The preflight must report that, naming the directories and the fix,
not die with a PermissionError traceback that names neither."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from worker_harness import WORKER_DIR, as_another_user, bake_models, open_tree

from images.worker.preflight import run_preflight

MANIFEST = WORKER_DIR / "models.yaml"
WORKFLOWS = WORKER_DIR / "workflows"


@contextlib.contextmanager
def _tree(dir_mode: int, loader_dir: str | None) -> Iterator[Path]:
    """Baked models, files 644; every directory `dir_mode`, or only `loader_dir` when one is named."""
    with open_tree() as top:
        models = bake_models(top / "models")
        for path in sorted((models, *models.rglob("*")), key=lambda p: len(p.parts), reverse=True):
            if path.is_dir():
                path.chmod(dir_mode if loader_dir is None or path.name == loader_dir else 0o755)
            else:
                path.chmod(0o644)
        yield models


def test_a_loader_directory_the_worker_cannot_search_is_a_named_problem():
    with _tree(0o644, "loras") as models, as_another_user():
        report = run_preflight(MANIFEST, WORKFLOWS, [models])
    assert not report.ok
    [problem] = [p for p in report.problems if p.startswith("loader folder loras:")]
    assert f"{models / 'loras'} cannot be searched by the worker's user" in problem, problem
    assert "make the directories 755" in problem
    assert "is empty" not in problem  # the files are there: "empty" would send the operator to re-bake them


def test_a_tree_copied_with_chmod_644_is_reported_not_raised():
    with _tree(0o644, None) as models, as_another_user():
        report = run_preflight(MANIFEST, WORKFLOWS, [models])
        text = report.render_text()
    assert not report.ok
    assert str(models) in report.roots_present
    assert all(m.status == "unreadable" for m in report.models), report.models
    assert any("cannot be searched by the worker's user" in p for p in report.problems), report.problems
    assert "worker preflight: FAILED" in text
