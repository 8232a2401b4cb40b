"""Dataset specs: the synthetic difficulty, and the TF-free resolver shared with evaluation."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.data import DatasetError, load_cifar10, read_meta
from training.datasets import dataset_folder, is_generated
from training.synthetic import (
    DEFAULT_DIFFICULTY,
    EASY,
    GENERATOR_VERSION,
    SyntheticDifficulty,
    parse_synthetic_spec,
    synthetic_parameters,
    write_synthetic_cifar10,
)

REPO = Path(__file__).resolve().parents[2]
SMALL = {"train_per_batch": 200, "test_size": 100, "seed": 5}


def _batch(folder: Path, name: str) -> dict[bytes, object]:
    batch: dict[bytes, object] = pickle.loads((folder / name).read_bytes(), encoding="bytes")
    return batch


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("synthetic", DEFAULT_DIFFICULTY),
        ("synthetic:default", DEFAULT_DIFFICULTY),
        ("synthetic:easy", SyntheticDifficulty(overlap=0, noise=20, clutter=0, label_noise=0)),
        (
            "synthetic:overlap=0.5,noise=40,clutter=2,label_noise=0.1",
            SyntheticDifficulty(overlap=0.5, noise=40, clutter=2, label_noise=0.1),
        ),
        (
            "synthetic:easy,noise=40",
            SyntheticDifficulty(overlap=0, noise=40, clutter=0, label_noise=0),
        ),
        (
            "synthetic: noise = 7 , clutter=0",
            SyntheticDifficulty(DEFAULT_DIFFICULTY.overlap, 7, 0, DEFAULT_DIFFICULTY.label_noise),
        ),
        (
            "synthetic:overlap=1,label_noise=0",
            SyntheticDifficulty(1, DEFAULT_DIFFICULTY.noise, DEFAULT_DIFFICULTY.clutter, 0),
        ),
    ],
)
def test_difficulty_specs(spec: str, expected: SyntheticDifficulty) -> None:
    assert parse_synthetic_spec(spec) == expected


def test_the_easy_preset_is_the_original_generator() -> None:
    assert parse_synthetic_spec("synthetic:easy") == EASY
    assert (EASY.overlap, EASY.noise, EASY.clutter, EASY.label_noise) == (0, 20, 0, 0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "synthetic:blur=2",
            r"unknown parameter 'blur'; expected one of overlap, noise, clutter, label_noise",
        ),
        ("synthetic:overlap=high", r"overlap='high' is not valid; expected a number from 0 to 1"),
        ("synthetic:overlap=1.5", r"overlap='1.5' is out of range; expected a number from 0 to 1"),
        ("synthetic:noise=-1", r"noise='-1' is out of range; expected a pixel standard deviation"),
        ("synthetic:noise=nan", r"noise='nan' is out of range"),
        ("synthetic:clutter=2.5", r"clutter='2.5' is not valid; expected a whole number"),
        ("synthetic:clutter=11", r"clutter='11' is out of range"),
        (
            "synthetic:label_noise=2",
            r"label_noise='2' is out of range; expected a fraction from 0 to 1",
        ),
        ("synthetic:noise=10,noise=20", r"'noise' is given twice"),
        ("synthetic:noise=10,easy", r"the preset 'easy' must come first"),
        ("synthetic:hard", r"'hard' is neither key=value .* nor a preset \(easy, default\)"),
        ("synthetic:", r"'' is neither key=value"),
    ],
)
def test_bad_difficulty_specs_name_the_key_and_the_expectation(spec: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        parse_synthetic_spec(spec)


def test_a_difficulty_is_validated_when_made_directly() -> None:
    with pytest.raises(ValueError, match="overlap=2: expected a number from 0 to 1"):
        SyntheticDifficulty(overlap=2)
    with pytest.raises(ValueError, match=r"clutter=1\.5: expected a whole number"):
        SyntheticDifficulty(clutter=1.5)


@pytest.mark.parametrize(
    "difficulty", [EASY, DEFAULT_DIFFICULTY, SyntheticDifficulty(1 / 3, 12.5, 1, 0.05)]
)
def test_a_difficulty_spec_and_key_round_trip(difficulty: SyntheticDifficulty) -> None:
    assert parse_synthetic_spec(difficulty.spec()) == difficulty
    assert difficulty.key().startswith(f"v{GENERATOR_VERSION}-")
    assert "/" not in difficulty.key()


def test_keys_tell_difficulties_apart() -> None:
    specs = ["synthetic:easy", "synthetic", "synthetic:noise=41", "synthetic:label_noise=0.2"]
    keys = {parse_synthetic_spec(spec).key() for spec in specs}
    assert len(keys) == len(specs)
    # The same difficulty spelled differently is one key.
    assert (
        parse_synthetic_spec("synthetic:easy").key()
        == parse_synthetic_spec("synthetic:overlap=0,noise=20.0,clutter=0,label_noise=0").key()
    )


@pytest.mark.parametrize(
    ("spec", "generated"),
    [
        ("synthetic", True),
        ("synthetic:easy", True),
        ("synthetic:noise=3", True),
        ("digits", True),
        (None, False),
        ("cifar10", False),
        ("data/cifar-10-python.tar.gz", False),
        ("synthetics", False),
    ],
)
def test_is_generated(spec: str | None, generated: bool) -> None:
    assert is_generated(spec) is generated


def test_same_difficulty_writes_the_same_bytes(tmp_path: Path) -> None:
    hard = SyntheticDifficulty(overlap=0.7, noise=30, clutter=2, label_noise=0.2)
    first = write_synthetic_cifar10(tmp_path / "a", difficulty=hard, **SMALL)
    second = write_synthetic_cifar10(tmp_path / "b", difficulty=hard, **SMALL)
    for name in ("data_batch_1", "data_batch_5", "test_batch", "batches.meta"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    other = write_synthetic_cifar10(tmp_path / "c", difficulty=EASY, **SMALL)
    assert (other / "data_batch_1").read_bytes() != (first / "data_batch_1").read_bytes()


def test_the_meta_records_the_parameters(tmp_path: Path) -> None:
    difficulty = SyntheticDifficulty(overlap=0.3, noise=25, clutter=1, label_noise=0.1)
    folder = write_synthetic_cifar10(tmp_path, difficulty=difficulty, **SMALL)
    meta = read_meta(folder)
    assert meta is not None
    assert meta[b"dataset"] == b"synthetic"
    parameters = meta[b"parameters"]
    assert parameters == synthetic_parameters(difficulty, **SMALL)
    assert {k: parameters[k] for k in ("overlap", "noise", "clutter", "label_noise")} == {
        "overlap": 0.3,
        "noise": 25,
        "clutter": 1,
        "label_noise": 0.1,
    }
    assert parameters["generator_version"] == GENERATOR_VERSION
    assert parameters["seed"] == SMALL["seed"]
    loaded = load_cifar10(folder)
    assert loaded.name == "synthetic"
    assert loaded.parameters == parameters


@pytest.mark.parametrize("fraction", [0.1, 0.25])
def test_label_noise_flips_that_fraction_of_training_labels_only(
    tmp_path: Path, fraction: float
) -> None:
    base = SyntheticDifficulty(overlap=0.5, noise=30, clutter=1, label_noise=0)
    clean = write_synthetic_cifar10(tmp_path / "clean", difficulty=base, **SMALL)
    noisy = write_synthetic_cifar10(
        tmp_path / "noisy",
        difficulty=SyntheticDifficulty(0.5, 30, 1, label_noise=fraction),
        **SMALL,
    )
    flipped = 0
    for name in [f"data_batch_{i}" for i in range(1, 6)]:
        a, b = _batch(clean, name), _batch(noisy, name)
        np.testing.assert_array_equal(a[b"data"], b[b"data"])  # the same images
        changed = np.asarray(a[b"labels"]) != np.asarray(b[b"labels"])
        assert changed.sum() == round(fraction * SMALL["train_per_batch"])
        flipped += int(changed.sum())
    total = 5 * SMALL["train_per_batch"]
    assert flipped / total == pytest.approx(fraction)
    assert (clean / "test_batch").read_bytes() == (noisy / "test_batch").read_bytes()
    # Labels are replaced by another class, uniformly: every class receives some.
    x_clean, x_noisy = load_cifar10(clean), load_cifar10(noisy)
    moved = x_noisy.y_train[x_clean.y_train != x_noisy.y_train]
    assert set(np.unique(moved)) == set(range(10))


def test_difficulty_changes_the_images(tmp_path: Path) -> None:
    easy = load_cifar10(write_synthetic_cifar10(tmp_path / "easy", difficulty=EASY, **SMALL))
    quiet = SyntheticDifficulty(overlap=0, noise=0, clutter=0, label_noise=0)
    silent = load_cifar10(write_synthetic_cifar10(tmp_path / "quiet", difficulty=quiet, **SMALL))
    np.testing.assert_array_equal(easy.y_train, silent.y_train)
    # Pixel noise of standard deviation 20 (clipped at 0 and 255) on the same shapes.
    difference = easy.x_test.astype(float) - silent.x_test.astype(float)
    assert 12 < difference.std() < 21


def test_the_resolver_writes_each_difficulty_once_in_its_own_folder(tmp_path: Path) -> None:
    default = dataset_folder("synthetic", root=tmp_path)
    assert default == tmp_path / "synthetic" / DEFAULT_DIFFICULTY.key() / "cifar-10-batches-py"
    easy = dataset_folder("synthetic:easy", root=tmp_path)
    assert easy == tmp_path / "synthetic" / EASY.key() / "cifar-10-batches-py"
    written = (default / "data_batch_1").stat().st_mtime_ns
    assert dataset_folder(DEFAULT_DIFFICULTY.spec(), root=tmp_path) == default
    assert (default / "data_batch_1").stat().st_mtime_ns == written  # reused, not rewritten
    meta = read_meta(default)
    assert meta is not None
    assert meta[b"parameters"]["noise"] == DEFAULT_DIFFICULTY.noise
    assert load_cifar10(easy).parameters["noise"] == 20


def test_a_stale_cache_is_written_again(tmp_path: Path) -> None:
    folder = dataset_folder("synthetic:easy", root=tmp_path)
    meta = read_meta(folder)
    assert meta is not None
    meta[b"parameters"] = dict(meta[b"parameters"], generator_version=1)
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    assert dataset_folder("synthetic:easy", root=tmp_path) == folder
    meta = read_meta(folder)
    assert meta is not None
    assert meta[b"parameters"]["generator_version"] == GENERATOR_VERSION


def test_the_resolver_reports_bad_specs_and_missing_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(DatasetError, match="unknown parameter 'blur'"):
        dataset_folder("synthetic:blur=1", root=tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    for spec in (None, "cifar10"):
        with pytest.raises(DatasetError, match=r"CIFAR-10 was not found\.\nPut the official"):
            dataset_folder(spec, root=tmp_path)
    with pytest.raises(DatasetError, match="no CIFAR-10 archive or folder here"):
        dataset_folder(str(tmp_path), root=tmp_path)
    folder = write_synthetic_cifar10(tmp_path / "mine", difficulty=EASY, **SMALL)
    assert dataset_folder(str(folder.parent)) == folder


def test_the_resolver_does_not_import_tensorflow(tmp_path: Path) -> None:
    """Evaluation (in the service's environment) resolves datasets without TensorFlow."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "import training.datasets as d\n"
        "loaded = [m for m in ('tensorflow', 'keras', 'sklearn') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        f"d.dataset_folder('synthetic:easy', root=Path({str(tmp_path)!r}))\n"
        "loaded = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO, timeout=120)


WRITE_DIGITS = """
import sys
from pathlib import Path
from training.data import load_cifar10
from training.datasets import dataset_folder
folder = dataset_folder("digits", root=Path(sys.argv[1]))
for _ in range(20):  # read it while the others may still be writing
    load_cifar10(folder)
print(folder)
"""


def test_processes_writing_the_same_dataset_at_once_all_get_a_whole_one(tmp_path: Path) -> None:
    # As Ray actors on one node do when they open a generated dataset together.
    command = [sys.executable, "-c", WRITE_DIGITS, str(tmp_path)]
    writers = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(4)]
    folders = {writer.communicate(timeout=120)[0].strip() for writer in writers}
    assert [writer.returncode for writer in writers] == [0] * 4
    (folder,) = folders
    assert load_cifar10(folder).x_test.shape[1:] == (32, 32, 3)
    assert [p.name for p in Path(folder).parent.iterdir()] == ["cifar-10-batches-py"]
