"""Training runs with the papers' schedules and clipping: step counts, resume after a crash, the default
run unchanged, and bad values refused in one line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from flows.cli import app
from models import distributed
from models.schedules import Schedule
from models.train_loop import make_optimizer
from storage.layout import DataRoot
from tasks.common import config_hash, shard_hash
from tasks.train.checkpoints import latest_checkpoint, load_state
from tasks.train.compare import method_config
from tasks.train.config import _LATER_FIELDS, RUNTIME_FIELDS, TrainConfig, train_hash
from tasks.train.objective_run import ObjectiveTrainer
from tasks.train.prepare import data_snapshot
from tasks.train.run import Trainer, TrainingDataError, train
from tests.tasks.train.synthetic_roots import one_torch_thread, paired_synthetic_root

CFG = TrainConfig(text="learned", d=32, lr=3e-3, epochs=3, heldout_fraction=0.3, videos_per_batch=4, seed=2)
RECIPE = {"schedule": "warmup_cosine", "warmup_steps": 2, "clip_norm": 1.0, "adam_betas": (0.9, 0.98)}
# The optimiser fields at their defaults (HowTo100M's epoch decay, Adam).
DEFAULT_RECIPE = {"schedule": "epoch_decay", "warmup_steps": 0, "clip_norm": None, "adam_betas": (0.9, 0.999),
                  "weight_decay": 0.0}  # fmt: skip


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataRoot]:
    with one_torch_thread():
        yield paired_synthetic_root(tmp_path_factory.mktemp("schedules"), n_videos=24, n_steps=12)


def _last_state(root: DataRoot, run_id: str) -> dict[str, Any]:
    path = latest_checkpoint(root, run_id)
    assert path is not None
    return load_state(root, path)


def test_new_fields_at_their_defaults_keep_every_run_id() -> None:
    new = {"schedule", "warmup_steps", "clip_norm", "adam_betas", "weight_decay"}
    assert new <= set(_LATER_FIELDS)
    assert train_hash(TrainConfig()) == "96a9a279041f53f5"  # the default run's id, as before
    # CFG's learned text side is at its revision 2 (tasks/train/config.py TEXT_REVISIONS), the rest as before.
    plain = config_hash(CFG, exclude=RUNTIME_FIELDS | set(_LATER_FIELDS))
    assert train_hash(CFG) == shard_hash(plain, "text learned revision 2")
    changed: list[dict[str, Any]] = [
        {"schedule": "warmup_linear"},
        {"clip_norm": 2.0},
        {"adam_betas": (0.9, 0.98)},
        {"weight_decay": 0.01},
    ]
    hashes = {train_hash(CFG.model_copy(update=c)) for c in changed}
    assert len(hashes) == len(changed) and train_hash(CFG) not in hashes


def test_a_per_step_schedule_steps_every_batch_and_ends_at_zero(root: DataRoot) -> None:
    cfg = CFG.model_copy(update={**RECIPE, "run_id": "per-step"})
    rows: list[dict[str, Any]] = []
    train(cfg, root, on_epoch=rows.append)
    state = _last_state(root, "per-step")
    per_epoch, later = state["extra"]["epoch_steps"]
    assert per_epoch == later >= 3
    assert state["scheduler"]["last_epoch"] == 3 * per_epoch  # stepped after every optimiser step
    assert state["scheduler"]["_last_lr"] == [0.0]  # the run's last step was at the end value
    schedule = Schedule("warmup_cosine", warmup_steps=2, total_steps=3 * per_epoch)
    assert [r["lr"] for r in rows] == pytest.approx(
        [cfg.lr * schedule.factor(e * per_epoch + 1) for e in range(3)], rel=1e-12
    )
    assert state["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.98)


def test_a_crashed_run_resumes_with_the_same_rates_and_weights(root: DataRoot) -> None:
    """A run stopped after epoch 1 and started again ends where the same run straight through ends:
    same weights, same learning rate at every epoch, the same scheduler state."""
    cfg = CFG.model_copy(update={**RECIPE, "schedule": "warmup_linear"})
    train(cfg.model_copy(update={"run_id": "straight"}), root)

    class Crash(Exception):
        pass

    def crash_after_epoch_1(row: dict[str, Any]) -> None:
        if row["epoch"] == 1:
            raise Crash  # after the epoch's checkpoint, as a killed process would leave it

    crashed = cfg.model_copy(update={"run_id": "crashed"})
    with pytest.raises(Crash):
        train(crashed, root, on_epoch=crash_after_epoch_1)
    assert _last_state(root, "crashed")["epoch"] == 1
    train(crashed, root)

    straight, resumed = _last_state(root, "straight"), _last_state(root, "crashed")
    assert [r["lr"] for r in resumed["extra"]["history"]] == [r["lr"] for r in straight["extra"]["history"]]
    assert resumed["scheduler"] == straight["scheduler"]
    for name, weights in straight["model"].items():
        assert torch.equal(resumed["model"][name], weights), name


def test_the_default_run_trains_as_the_epoch_loop_did(root: DataRoot) -> None:
    """At the default schedule a run is HowTo100M's loop: ExponentialLR stepped once an epoch, no
    clipping, no batches drawn to count steps; its weights are that loop's, bit for bit."""
    cfg = CFG.model_copy(update={"run_id": "default", "epochs": 2})
    train(cfg, root)
    state = _last_state(root, "default")
    assert "epoch_steps" not in state["extra"]
    assert state["scheduler"]["last_epoch"] == 2 and state["scheduler"]["gamma"] == cfg.lr_decay

    torch.manual_seed(cfg.seed)
    trainer = Trainer(cfg, root)
    model, _ = trainer.build()
    optimizer, scheduler = make_optimizer(model, cfg.lr, cfg.lr_decay)
    loss_fn = trainer.make_loss()
    for epoch in (1, 2):
        trainer.train_one_epoch(model, loss_fn, optimizer, trainer.batches(epoch))
        scheduler.step()
    for name, weights in model.state_dict().items():
        assert torch.equal(state["model"][name], weights), name


@pytest.mark.parametrize(
    "recipe, world",
    [
        ({"objective": "pairs", "drop_last": True}, 1),
        ({"objective": "milnce", "clips_per_video": 2, "drop_last": True}, 1),
        ({"objective": "tvts", "sort_windows": 1, "clips_per_video": 8}, 1),
        ({"objective": "howto100m", "clips_per_video": 4}, 2),
    ],
)
def test_steps_per_epoch_counts_the_steps_an_epoch_takes(
    root: DataRoot, recipe: dict[str, object], world: int
) -> None:
    cfg = CFG.model_copy(update={**recipe, "videos_per_batch": 3})
    trainer = ObjectiveTrainer(cfg, root)
    trainer.dist = distributed.DistContext(rank=world - 1, world=world)  # this rank's share of the batches
    counted, later = trainer.epoch_steps()
    assert later == counted
    model, _ = trainer.build()
    optimizer, _ = make_optimizer(model, cfg.lr)
    batches = distributed.shard_batches(trainer.batches(1), trainer.dist)
    trained = trainer.train_one_epoch(model, trainer.make_loss(), optimizer, batches).batches
    assert counted == trained > 0


def test_videoclips_later_epochs_are_counted_with_their_retrieval_batches(root: DataRoot) -> None:
    """Retrieval batches after epoch 1 are fewer than epoch 1's random ones (17 videos, 4 a batch: 4
    against 5); the count of a later epoch is the one epoch 2 trains."""
    cfg = CFG.model_copy(update={"objective": "videoclip", "clips_per_video": 2, "retrieval_batches": True})
    trainer = ObjectiveTrainer(cfg, root)
    first, later = trainer.epoch_steps()
    assert later < first
    model, _ = trainer.build()
    optimizer, _ = make_optimizer(model, cfg.lr)
    loss_fn = trainer.make_loss()
    trained = [trainer.train_one_epoch(model, loss_fn, optimizer, trainer.batches(e)).batches for e in (1, 2)]
    assert trained == [first, later]


def test_a_warmup_longer_than_the_run_is_one_clear_error(root: DataRoot) -> None:
    cfg = CFG.model_copy(update={"schedule": "warmup_cosine", "warmup_steps": 10_000, "run_id": "long"})
    with pytest.raises(
        TrainingDataError, match=r"warmup_steps 10000: not shorter than this run's \d+ optimiser"
    ):
        train(cfg, root)


@pytest.mark.parametrize(
    "value, problem",
    [
        ("train.clip_norm=-1", "greater than 0"),
        ("train.warmup_steps=-5", "greater than or equal to 0"),
        ("train.schedule=cosine", "epoch_decay"),
        ("train.warmup_steps=100", "warmup_steps is for schedule"),
        ("train.adam_betas=[0.9,1.5]", "each must be in [0, 1)"),
        # inf passed gt=0 and NaN an unbounded field: either trained NaN weights to the end, exit 0.
        ("train.lr=.inf", "train.lr: Input should be a finite number"),
        ("train.margin=nan", "train.margin: Input should be a finite number"),
    ],
)
def test_bad_values_through_set_are_one_line(value: str, problem: str) -> None:
    result = CliRunner().invoke(app, ["pipeline", "--set", value, "--print-config"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and problem in lines[0] and "Traceback" not in result.output, result.output


@pytest.mark.parametrize("option, value", [("--lr", "inf"), ("--lr-decay", "inf"), ("--clip-norm", "inf")])
def test_an_infinite_rate_is_refused_before_training(tmp_path: Any, option: str, value: str) -> None:
    root = paired_synthetic_root(tmp_path, n_videos=4, n_steps=3)
    result = CliRunner().invoke(app, ["train", "--data-root", str(root.url), option, value])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"error: {option}: Input should be a finite number", result.stderr
    assert not root.exists("train")  # no run folder, no checkpoint


def test_the_recipes_are_reachable_through_set() -> None:
    result = CliRunner().invoke(
        app,
        ["pipeline", "--print-config", "--set", "train.schedule=warmup_linear", "--set", "train.warmup_steps=1000",
         "--set", "train.clip_norm=2.0", "--set", "train.adam_betas=[0.9, 0.98]", "--set", "train.weight_decay=0.01"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for line in ("schedule: warmup_linear", "warmup_steps: 1000", "clip_norm: 2.0", "weight_decay: 0.01"):
        assert line in result.output


def test_howto_train_takes_the_recipes_as_options(root: DataRoot) -> None:
    """`howto train` trains a paper's recipe given as options: the same run (id, rates, betas) as the
    config fields give through the pipeline."""
    base = ["train", "--data-root", root.url, "--text", "learned", "--d", "32", "--lr", "0.003", "--epochs", "3",
            "--heldout-fraction", "0.3", "--videos-per-batch", "4", "--seed", "2"]  # fmt: skip
    recipe = ["--schedule", "warmup_cosine", "--warmup-steps", "2", "--clip-norm", "1.0", "--adam-betas", "0.9, 0.98",
              "--weight-decay", "0.01"]  # fmt: skip
    out = CliRunner().invoke(app, [*base, *recipe])
    assert out.exit_code == 0, out.output
    run_id = out.stdout.split(":", 1)[0].removeprefix("run ")
    assert out.stdout.startswith(f"run {run_id}: 3 epochs"), out.output
    # The config with the same fields names the same run, finished already.
    same = train(CFG.model_copy(update={**RECIPE, "weight_decay": 0.01}), root)
    assert (same["run_id"], same.get("cached")) == (run_id, True)
    state = _last_state(root, run_id)
    per_epoch = state["extra"]["epoch_steps"][0]
    assert state["scheduler"]["last_epoch"] == 3 * per_epoch and state["scheduler"]["_last_lr"] == [0.0]
    group = state["optimizer"]["param_groups"][0]
    assert group["betas"] == (0.9, 0.98) and group["weight_decay"] == 0.01
    # A constant rate (TVTS's recipe): --lr-decay 1 keeps --lr through every epoch.
    flat = CliRunner().invoke(app, [*base, "--lr-decay", "1", "--epochs", "2", "--run-id", "flat"])
    assert flat.exit_code == 0, flat.output
    assert _last_state(root, "flat")["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.003)


@pytest.mark.parametrize(
    "options, problem",
    [
        (["--adam-betas", "0.9"], "--adam-betas '0.9': two numbers B1,B2"),
        (["--adam-betas", "0.9,x"], "--adam-betas '0.9,x': two numbers B1,B2"),
        (["--adam-betas", "0.9,1.5"], "--adam-betas '0.9,1.5': each must be in [0, 1)"),
        (["--warmup-steps", "5"], "--warmup-steps 5 is for --schedule warmup_cosine or warmup_linear"),
        (["--preset", "milnce", "--warmup-steps", "5"], "--warmup-steps 5 is for --schedule"),
        (["--clip-norm", "0"], "--clip-norm: Input should be greater than 0"),
        (["--lr-decay", "0"], "--lr-decay: Input should be greater than 0"),
        (["--weight-decay", "-1"], "--weight-decay"),
        (["--schedule", "cosine"], "is not one of"),
    ],
)
def test_bad_recipe_options_are_one_line_before_training(
    tmp_path: Any, options: list[str], problem: str
) -> None:
    out = CliRunner().invoke(app, ["train", "--data-root", str(tmp_path / "none"), *options])
    assert out.exit_code == 2, out.output
    assert problem in out.stderr and "Traceback" not in out.output, out.output
    if "--schedule" not in options:  # typer's own usage error for a bad choice has its usage lines
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "none").exists()


def test_howto_train_compare_applies_the_recipe_to_every_methods_runs(root: DataRoot) -> None:
    """`howto train compare` takes the same recipe options: each method's run trains with them (its id is
    the one the recipe's config names, its optimiser has the betas and weight decay, its rate ends at 0)."""
    shared = ["--text", "learned", "--d", "32", "--lr", "0.003", "--epochs", "2", "--heldout-fraction", "0.3",
              "--videos-per-batch", "4"]  # fmt: skip
    recipe = ["--schedule", "warmup_linear", "--warmup-steps", "2", "--clip-norm", "1.0", "--adam-betas", "0.9,0.98",
              "--weight-decay", "0.01"]  # fmt: skip
    args = ["train", "compare", "--data-root", root.url, "--methods", "infonce,milnce_inbatch", "--seeds", "0",
            "--control", "", "--no-benchmarks", "--no-audio", "--name", "recipe", *shared, *recipe]  # fmt: skip
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    base = TrainConfig(
        text="learned", d=32, lr=3e-3, epochs=2, heldout_fraction=0.3, videos_per_batch=4, clip_pool="mean",
        clip_context_s=2.0, schedule="warmup_linear", warmup_steps=2, clip_norm=1.0, adam_betas=(0.9, 0.98),
        weight_decay=0.01,
    )  # fmt: skip
    data_hash = data_snapshot(root)["hash"]
    for method in ("infonce", "milnce_inbatch"):
        run_id = method_config(base, method, 0, data_hash=data_hash).run_id
        assert run_id is not None
        state = _last_state(root, run_id)
        group = state["optimizer"]["param_groups"][0]
        assert group["betas"] == (0.9, 0.98) and group["weight_decay"] == 0.01, method
        assert state["scheduler"]["_last_lr"] == [0.0], method  # warmup_linear decays to 0 at the last step
        # Without the recipe the same method is another run: the recipe is part of its name.
        assert (
            run_id != method_config(TrainConfig(**{**base.model_dump(), **DEFAULT_RECIPE}), method, 0).run_id
        )


@pytest.mark.parametrize(
    "options, problem",
    [
        (["--adam-betas", "0.9"], "--adam-betas '0.9': two numbers B1,B2"),
        (["--warmup-steps", "5"], "--warmup-steps 5 is for --schedule warmup_cosine or warmup_linear"),
        (["--clip-norm", "0"], "--clip-norm: Input should be greater than 0"),
    ],
)
def test_compare_refuses_bad_recipe_options_in_one_line(
    tmp_path: Any, options: list[str], problem: str
) -> None:
    out = CliRunner().invoke(app, ["train", "compare", "--data-root", str(tmp_path / "none"), *options])
    assert out.exit_code == 2, out.output
    assert problem in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "none").exists()
