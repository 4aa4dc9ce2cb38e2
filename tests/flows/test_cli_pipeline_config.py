"""`howto pipeline --config FILE --set a.b=value --print-config`: loading, precedence, errors, choices."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
import typer
import yaml
from typer.testing import CliRunner

from flows import cli_pipeline
from flows.cli_errors import HowtoGroup
from flows.config_file import ConfigError, resolve, to_yaml
from flows.pipeline_config import ALL_STAGES, PipelineConfig
from flows.runner_config import RunnerConfig
from tasks.train.config import TrainConfig

runner = CliRunner()
# Wide enough that rich never wraps a metavar such as [tasks|search|captions|features|train].
WIDE = {"COLUMNS": "200"}


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[None]:
    # Overrides tests/flows/conftest.py's: nothing here runs a flow, so no Prefect server is needed.
    yield


@pytest.fixture
def app() -> typer.Typer:
    # Only this module's commands: the test does not depend on every other `flows/cli_*.py` importing.
    # With the root's group: the one place that turns an expected failure into one line and exit 2.
    app = typer.Typer(cls=HowtoGroup, pretty_exceptions_enable=False)
    cli_pipeline.register(app)
    return app


def invoke(app: typer.Typer, *args: str) -> Any:
    return runner.invoke(app, ["pipeline", *args], env=WIDE)


def printed(app: typer.Typer, *args: str) -> PipelineConfig:
    result = invoke(app, *args, "--print-config")
    assert result.exit_code == 0, result.output
    return PipelineConfig.model_validate(yaml.safe_load(result.stdout))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


FILES = {
    "yaml": "search:\n  max_results: 50\nfeatures:\n  models: [resnet152]\ntrain:\n  loss: milnce\n",
    "toml": '[search]\nmax_results = 50\n[features]\nmodels = ["resnet152"]\n[train]\nloss = "milnce"\n',
    "json": '{"search": {"max_results": 50}, "features": {"models": ["resnet152"]}, "train": {"loss": "milnce"}}',
}


@pytest.mark.parametrize("suffix", sorted(FILES))
def test_yaml_toml_and_json_files_give_the_same_config(tmp_path: Path, suffix: str) -> None:
    cfg = resolve(write(tmp_path / f"howto.{suffix}", FILES[suffix]))
    assert cfg.search.max_results == 50
    assert cfg.features.models == ("resnet152",)
    assert cfg.train.loss == "milnce"
    assert cfg.captions == PipelineConfig().captions  # untouched sections keep their defaults


def test_empty_yaml_file_means_defaults(tmp_path: Path) -> None:
    assert resolve(write(tmp_path / "empty.yml", "")) == PipelineConfig()


def test_set_values_are_read_as_yaml() -> None:
    cfg = resolve(
        sets=[
            "search.max_results=50",
            "features.models=[resnet152]",
            "train.lr=1e-3",
            "train.shuffle_pairs=true",
            "tasks.max_articles=null",
            "tasks.filters.allow_verbs=[make, cook]",
        ]
    )
    assert cfg.search.max_results == 50 and cfg.features.models == ("resnet152",)
    assert cfg.train.lr == 0.001 and cfg.train.shuffle_pairs is True
    assert cfg.tasks.max_articles is None and cfg.tasks.filters.allow_verbs == ("make", "cook")


def test_set_keeps_text_fields_as_typed() -> None:
    # YAML alone would read 0001 as the number 1 and off as False.
    cfg = resolve(sets=["tasks.crawl_id=0001", "train.run_id=off", "search.query_template={title} tutorial"])
    assert cfg.tasks.crawl_id == "0001" and cfg.train.run_id == "off"
    assert cfg.search.query_template == "{title} tutorial"
    assert resolve(sets=["youtube.site_url=http://x", "youtube.site_url="]).youtube.site_url is None


def test_values_are_checked_together_whatever_the_order_of_the_sets(tmp_path: Path, app: typer.Typer) -> None:
    # runner.part must be below runner.parts: checked once every value is in, not against the default parts.
    for sets in (["runner.part=1", "runner.parts=2"], ["runner.parts=2", "runner.part=1"]):
        cfg = resolve(sets=sets)
        assert (cfg.runner.part, cfg.runner.parts) == (1, 2)
    cfg = resolve(write(tmp_path / "c.yaml", "runner: {part: 1}\n"), sets=["runner.parts=2"])
    assert (cfg.runner.part, cfg.runner.parts) == (1, 2)
    with pytest.raises(ConfigError, match=r"^--set runner.part: .*below runner.parts \(2\), got 5"):
        resolve(sets=["runner.parts=2", "runner.part=5"])
    with pytest.raises(ConfigError, match=r"^--set search.max_results: .*valid integer"):
        resolve(sets=["search.max_results=many", "runner.parts=2"])
    result = runner.invoke(
        app, ["pipeline", "--set", "runner.part=1", "--set", "runner.parts=2", "--print-config"]
    )
    assert result.exit_code == 0 and "part: 1" in result.stdout, result.output


def test_set_with_a_mapping_merges_into_the_section(tmp_path: Path) -> None:
    cfg = resolve(write(tmp_path / "c.yaml", "train: {epochs: 3}\n"), sets=["train={loss: infonce, d: 64}"])
    assert (cfg.train.epochs, cfg.train.loss, cfg.train.d) == (3, "infonce", 64)


def test_precedence_defaults_file_options_set(app: typer.Typer, tmp_path: Path) -> None:
    file = write(
        tmp_path / "c.yaml",
        "train: {loss: milnce, text: learned, epochs: 3}\nrunner: {max_workers: 3, task_runner: dask}\n",
    )
    cfg = printed(app, "--config", str(file))
    assert (cfg.train.loss, cfg.train.text, cfg.train.epochs) == ("milnce", "learned", 3)
    assert cfg.runner == RunnerConfig(task_runner="dask", max_workers=3)  # options not given: file wins

    cfg = printed(app, "--config", str(file), "--loss", "infonce", "--workers", "5")
    assert (cfg.train.loss, cfg.train.text, cfg.runner.max_workers) == ("infonce", "learned", 5)

    cfg = printed(app, "--set", "train.loss=max_margin", "--config", str(file), "--loss", "infonce")
    assert cfg.train.loss == "max_margin"  # --set beats the option, wherever it stands on the line
    assert cfg.train.epochs == 3 and cfg.search == PipelineConfig().search

    cfg = printed(app, "--set", "search.max_results=10", "--set", "search.max_results=20")
    assert cfg.search.max_results == 20  # the last --set of a key wins


SEARCH_FIELDS = ", ".join(PipelineConfig().search.model_dump())


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        (
            {},
            ["--set", "search.max_reslts=5"],
            "--set search.max_reslts: unknown field of search (did you mean max_results? "
            f"allowed: {SEARCH_FIELDS})",
        ),
        ({}, ["--set", "serch.max_results=5"], "--set serch.max_results: serch: unknown field of the config"),
        (
            {},
            ["--set", "search.max_results.x=5"],
            "--set search.max_results.x: search.max_results is a value",
        ),
        (
            {"c.yaml": "search:\n  max_reslts: 5\n"},
            ["--config", "c.yaml"],
            "c.yaml: search.max_reslts: unknown field of search (did you mean max_results?",
        ),
        (
            {},
            ["--set", "search.max_results=5000"],
            "--set search.max_results: Input should be less than or equal to 1000 (got 5000)",
        ),
        (
            {},
            ["--set", "features.models=[resnet15]"],
            "--set features.models: features.models.0: Input should be 'resnet152' or 'resnext101'",
        ),
        (
            {"c.yaml": "features:\n  batch_2d: many\n"},
            ["--config", "c.yaml"],
            "c.yaml: features.batch_2d: Input should be a valid integer",
        ),
        (
            {"c.toml": "[train]\nloss = 'hinge'\n"},
            ["--config", "c.toml"],
            "c.toml: train.loss: Input should be 'max_margin', 'milnce', 'milnce_inbatch' or 'infonce' (got 'hinge')",
        ),
        ({}, ["--set", "search.max_results"], "--set search.max_results: expected STAGE.FIELD=VALUE"),
        ({}, ["--set", "search.max_results=[1,"], "--set search.max_results: value is not valid YAML"),
        ({"c.yaml": "search: {max_results: 5\n"}, ["--config", "c.yaml"], "c.yaml: not valid YAML: expected"),
        ({"c.toml": "[search\n"}, ["--config", "c.toml"], "c.toml: not valid TOML: "),
        ({"c.json": "{'search': 1}"}, ["--config", "c.json"], "c.json: not valid JSON: "),
        ({"c.yaml": "- search\n"}, ["--config", "c.yaml"], "c.yaml: expected a mapping of sections"),
        ({"c.ini": "[search]\n"}, ["--config", "c.ini"], "c.ini: unknown config format '.ini'"),
        ({}, ["--config", "missing.yaml"], "missing.yaml: no such file"),
        (
            {"c.yaml": "youtube:\n  proxy: http://user:pw@proxy:3128\n"},
            ["--config", "c.yaml"],
            "c.yaml: youtube.proxy: Value error, expected a reference to a secret, env:NAME (an environment "
            "variable) or block:NAME (a Prefect Secret block), never the secret itself (got **********); "
            "the default, env:HOWTO_YTDLP_PROXY, reads $HOWTO_YTDLP_PROXY",
        ),
        (
            {"c.yaml": "captions:\n  proxy: env:P\n"},
            ["--config", "c.yaml"],
            "c.yaml: captions.proxy: unknown field of captions",  # access lives in `youtube` only
        ),
    ],
)
def test_config_errors_are_one_line_naming_the_field(
    app: typer.Typer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str],
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, text in files.items():
        write(tmp_path / name, text)
    result = invoke(app, *args, "--print-config")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: {message}"), result.stderr
    assert "Traceback" not in result.output


def test_bad_choices_are_refused(app: typer.Typer) -> None:
    for args in (["--loss", "hinge"], ["--text", "bert"], ["--stage", "crawl"], ["--task-runner", "ray"]):
        result = invoke(app, *args, "--print-config")
        assert result.exit_code == 2, args
        assert "is not one of" in result.output


def test_print_config_round_trips_through_config(app: typer.Typer, tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", FILES["toml"])
    args = ["--config", str(file), "--text", "learned", "--task-runner", "dask"]
    args += ["--set", "tasks.crawl_id=0001", "--set", "youtube.site_url=http://127.0.0.1:8647"]
    args += ["--set", "youtube.proxy=block:yt-proxy", "--set", "youtube.politeness.requests_per_s=0"]
    first = invoke(app, *args, "--print-config")
    assert first.exit_code == 0, first.output
    saved = write(tmp_path / "printed.yaml", first.stdout)
    again = invoke(app, "--config", str(saved), "--print-config")
    assert again.exit_code == 0, again.output
    assert again.stdout == first.stdout
    cfg = resolve(saved)
    assert cfg == resolve(
        file,
        sets=["train.text=learned", "runner.task_runner=dask", "tasks.crawl_id=0001"]
        + ["youtube.site_url=http://127.0.0.1:8647", "youtube.proxy=block:yt-proxy"]
        + ["youtube.politeness.requests_per_s=0"],
    )
    assert (cfg.train.text, cfg.runner.task_runner, cfg.tasks.crawl_id) == ("learned", "dask", "0001")
    assert cfg.youtube.site_url == "http://127.0.0.1:8647" and cfg.search.max_results == 50
    assert cfg.youtube.proxy == "block:yt-proxy" and cfg.youtube.politeness.requests_per_s == 0


def test_print_config_round_trips_every_default() -> None:
    assert PipelineConfig.model_validate(yaml.safe_load(to_yaml(PipelineConfig()))) == PipelineConfig()


def test_config_names_secrets_and_never_holds_or_echoes_them(app: typer.Typer) -> None:
    result = invoke(app, "--set", "youtube.cookies=block:yt-cookies", "--print-config")
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(result.stdout)
    # References print as they are (nothing secret in them), so the printed config round-trips.
    assert data["youtube"]["cookies"] == "block:yt-cookies"
    assert data["youtube"]["proxy"] == "env:HOWTO_YTDLP_PROXY"  # the default reference
    for key, value in [("youtube.proxy", "http://user:pw@proxy:3128"), ("youtube.cookies", "/secret/c.txt")]:
        refused = invoke(app, "--set", f"{key}={value}", "--print-config")
        assert refused.exit_code == 2 and refused.stdout == ""
        assert refused.stderr.startswith(f"error: --set {key}: Value error, expected a reference")
        assert "pw@proxy" not in refused.output and "/secret" not in refused.output


def test_print_config_runs_nothing(app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.pipeline

    def no_run(**_: Any) -> None:
        raise AssertionError("--print-config must not run the pipeline")

    monkeypatch.setattr(flows.pipeline, "pipeline", no_run)
    result = invoke(app, "--data-root", str(tmp_path / "data"), "--print-config")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# howto pipeline config")
    assert not (tmp_path / "data").exists()


def test_resolved_config_and_stages_reach_the_pipeline(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.pipeline

    calls: list[dict[str, Any]] = []

    def record(**kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs)
        return {"train": {"rows_in": 0}}

    monkeypatch.setattr(flows.pipeline, "pipeline", record)
    root = tmp_path / "data"
    result = invoke(
        app,
        *("--data-root", str(root), "--stage", "train", "--stage", "tasks", "--loss", "infonce"),
        *("--set", "runner.dask_address=tcp://scheduler:8786", "--task-runner", "dask"),
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"train": {"rows_in": 0}}
    [call] = calls
    assert call["stages"] == ["tasks", "train"]  # pipeline order, whatever the command line's
    assert call["cfg"].train.loss == "infonce"
    assert call["cfg"].runner == RunnerConfig(task_runner="dask", dask_address="tcp://scheduler:8786")


def test_help_lists_the_allowed_choices(app: typer.Typer) -> None:
    def choices(values: tuple[object, ...]) -> str:
        return "[" + "|".join(map(str, values)) + "]"

    pipeline_help = invoke(app, "--help")
    assert pipeline_help.exit_code == 0, pipeline_help.output
    for field in ("loss", "text"):
        assert choices(get_args(TrainConfig.model_fields[field].annotation)) in pipeline_help.stdout
    assert choices(ALL_STAGES) in pipeline_help.stdout
    assert choices(get_args(RunnerConfig.model_fields["task_runner"].annotation)) in pipeline_help.stdout
    assert "--set" in pipeline_help.stdout and "--print-config" in pipeline_help.stdout
    assert "--dask-address" not in pipeline_help.stdout  # one-for-one config field: --set runner.dask_address

    demo_help = runner.invoke(app, ["demo", "--help"], env=WIDE)
    assert demo_help.exit_code == 0 and choices(ALL_STAGES) in demo_help.stdout


@pytest.mark.parametrize(
    ("stage", "sets", "said"),
    [
        ("features", [], "no resnet152 weights found: pass --resnet-weights (features.resnet_weights) PATH"),
        (
            "audio",
            ["audio.encoder=cnn14", "features.random_weights=true"],
            "no cnn14 weights: pass --audio-weights PATH",
        ),
    ],
)
def test_an_encoder_stage_without_usable_weights_fails_before_any_stage_runs(
    app: typer.Typer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stage: str,
    sets: list[str],
    said: str,
) -> None:
    import flows.pipeline

    def no_run(**_: Any) -> None:
        raise AssertionError("the pipeline must not start when an encoder stage would refuse its weights")

    monkeypatch.setattr(flows.pipeline, "pipeline", no_run)
    # Not torchvision's cache of this machine: no ResNet-152 weights can be found there.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.chdir(tmp_path)
    set_args = [arg for value in sets for arg in ("--set", value)]
    # Every stage from tasks on: the collection stages before the encoders would run for hours first.
    result = invoke(app, "--data-root", str(tmp_path / "data"), *set_args)
    assert result.exit_code == 2, result.output
    assert said in result.output and "Traceback" not in result.output
    # The same settings with random weights allowed reach the pipeline.
    allowed = invoke(
        app,
        *("--data-root", str(tmp_path / "data"), *set_args),
        *("--set", f"{stage}.random_weights=true"),
    )
    assert "must not start" in str(allowed.exception), allowed.output


def test_a_missing_weights_file_fails_before_any_stage_runs_even_with_random_weights_allowed(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.pipeline

    def started(**_: Any) -> None:
        raise AssertionError("the pipeline started")

    monkeypatch.setattr(flows.pipeline, "pipeline", started)
    result = invoke(
        app,
        *("--data-root", str(tmp_path / "data"), "--set", "features.random_weights=true"),
        *("--set", f"features.resnext_weights={tmp_path / 'r3d.pth'}"),
    )
    assert result.exit_code == 2, result.output
    assert result.output == f"error: {tmp_path / 'r3d.pth'}: resnext101 weights file not found\n"


def test_a_recrawl_whose_stages_include_features_checks_its_weights_first(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.recrawl
    import flows.stage_inputs

    monkeypatch.setattr(flows.stage_inputs, "require_upstream", lambda *_: None)  # as if tasks were mined

    def started(*_: Any) -> None:
        raise AssertionError("the re-crawl started")

    monkeypatch.setattr(flows.recrawl, "recrawl", started)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    result = runner.invoke(app, ["recrawl", "--data-root", str(tmp_path / "data")], env=WIDE)
    assert result.exit_code == 2, result.output
    assert "no resnet152 weights found" in result.output  # features is a default re-crawl stage
    collect_only = runner.invoke(
        app, ["recrawl", "--data-root", str(tmp_path / "data"), "--stage", "search"], env=WIDE
    )
    assert "the re-crawl started" in str(collect_only.exception), collect_only.output


def test_a_recrawl_runs_and_checks_the_audio_stage_as_the_pipeline_does(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.recrawl
    import flows.stage_inputs

    monkeypatch.setattr(flows.stage_inputs, "require_upstream", lambda *_: None)  # as if tasks were mined
    ran: list[list[str] | None] = []

    def started(*args: Any) -> dict[str, Any]:
        ran.append(args[4])  # the stages the command chose (None: the flow's defaults)
        return {}

    monkeypatch.setattr(flows.recrawl, "recrawl", started)
    root = ["recrawl", "--data-root", str(tmp_path / "data")]
    no_cnn14 = ["--set", "features.random_weights=true", "--set", "audio.encoder=cnn14"]
    result = runner.invoke(app, [*root, *no_cnn14], env=WIDE)
    assert result.exit_code == 2, result.output
    assert "no cnn14 weights" in result.output and ran == []  # audio is a default re-crawl stage
    picked = runner.invoke(app, [*root, "--stage", "audio", "--stage", "search"], env=WIDE)
    assert picked.exit_code == 0, picked.output
    assert ran == [["search", "audio"]]  # in pipeline order
    assert (
        "[search|captions|features|audio|train]" in runner.invoke(app, ["recrawl", "--help"], env=WIDE).output
    )


def test_a_split_run_of_the_search_stage_is_one_line_and_exit_2(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """runner.parts > 1 with search (a bad config value): the flow raised a ValueError, so the command
    printed its traceback and exited 1 after starting Prefect; now one line, exit 2, before any work."""
    import flows.recrawl
    import flows.stage_inputs

    monkeypatch.setattr(flows.stage_inputs, "require_upstream", lambda *_: None)  # as if tasks were mined

    def started(*_: Any) -> None:
        raise AssertionError("the run started")

    monkeypatch.setattr(flows.recrawl, "recrawl", started)
    split = ["--data-root", str(tmp_path / "data"), "--set", "runner.parts=2", "--stage", "search"]
    line = (
        "error: runner.parts=2 splits only the tasks, captions, features, audio stages; "
        "run search in one run (parts=1)\n"
    )
    for command in ("pipeline", "recrawl"):
        result = runner.invoke(app, [command, *split], env=WIDE)
        assert result.exit_code == 2, result.output
        assert result.output == line


def test_a_recrawl_set_wins_over_its_recheck_options(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--set wins over the command's options (as its --help says): `--set search.recheck_missing=false`
    turned nothing off, the flow's recheck_missing=True was laid over it; a config file stays under them."""
    import flows.recrawl
    import flows.stage_inputs

    monkeypatch.setattr(flows.stage_inputs, "require_upstream", lambda *_: None)  # as if tasks were mined
    rechecks: list[tuple[bool, int | None]] = []

    def started(*args: Any) -> dict[str, Any]:
        rechecks.append((args[3], args[5]))  # recheck_missing, recheck_captions
        return {}

    monkeypatch.setattr(flows.recrawl, "recrawl", started)
    root = ["recrawl", "--data-root", str(tmp_path / "data"), "--stage", "search"]
    config = tmp_path / "howto.yaml"
    config.write_text("search:\n  recheck_missing: false\n  recheck_captions: 7\n")
    for extra in (
        [],
        ["--set", "search.recheck_missing=false", "--set", "search.recheck_captions=5"],
        ["--recheck-captions", "9", "--set", "search.recheck_captions=0", "--recheck-missing"],
        ["--config", str(config)],
    ):
        result = runner.invoke(app, [*root, *extra], env=WIDE)
        assert result.exit_code == 0, result.output
    assert rechecks == [(True, None), (False, 5), (True, 0), (True, None)]


def test_a_deployment_run_checks_the_weights_before_its_first_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`prefect deployment run` does not come through the CLI: the flow's own check stops it first."""
    from flows.pipeline import run_stages
    from tasks.features.weights import WeightsMissing

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    with pytest.raises(WeightsMissing, match="no resnet152 weights found"):
        run_stages(PipelineConfig(), str(tmp_path / "data"), ["tasks", "search", "captions", "features"])
    assert not (tmp_path / "data").exists()  # not one stage began


def test_demo_url_starts_from_the_demos_config(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--demo-url` (pipeline, recrawl): howto demo's config for that site under --config and --set, so a
    re-crawl of a grown demo world reuses the demo's shards instead of going to YouTube with the defaults."""
    import flows.recrawl
    import flows.stage_inputs
    from flows.demo import demo_pipeline_config

    url = "http://127.0.0.1:8647"
    demo = demo_pipeline_config(url)
    printed = runner.invoke(app, ["pipeline", "--demo-url", url, "--print-config"], env=WIDE)
    assert printed.exit_code == 0, printed.output
    assert printed.output == to_yaml(demo)
    # A file that sets one field of a section keeps the rest of the demo's section; --set goes on top.
    config = tmp_path / "howto.yaml"
    config.write_text("features:\n  short_side_2d: 96\nsearch:\n  max_results: 7\n", encoding="utf-8")
    layered = resolve(config, [], ["search.max_results=9"], base=demo)
    assert layered.features == demo.features.model_copy(update={"short_side_2d": 96})
    assert layered.search == demo.search.model_copy(update={"max_results": 9})

    monkeypatch.setattr(flows.stage_inputs, "require_upstream", lambda *_: None)  # as if tasks were mined
    configs: list[PipelineConfig] = []
    monkeypatch.setattr(flows.recrawl, "recrawl", lambda cfg, *_: configs.append(cfg) or {})
    done = runner.invoke(app, ["recrawl", "--data-root", str(tmp_path / "data"), "--demo-url", url], env=WIDE)
    assert done.exit_code == 0, done.output
    assert configs == [demo]


NESTED = 100_000  # past every parser's recursion (PyYAML's composer, json's decoder, tomllib)
DEEP = {
    "yaml": "tasks:\n  root_categories: " + "[" * NESTED + "]" * NESTED + "\n",
    "json": '{"tasks": {"root_categories": ' + "[" * NESTED + "]" * NESTED + "}}",
    "toml": "[tasks]\nroot_categories = " + "[" * NESTED + "]" * NESTED + "\n",
}


@pytest.mark.parametrize("suffix", sorted(DEEP))
def test_a_config_nested_thousands_deep_is_one_line(tmp_path: Path, app: typer.Typer, suffix: str) -> None:
    path = write(tmp_path / f"deep.{suffix}", DEEP[suffix])
    result = invoke(app, "--config", str(path), "--print-config")
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"error: {path}: not a config this reads: nested too deeply"


def test_a_set_value_nested_thousands_deep_is_one_line(app: typer.Typer) -> None:
    result = invoke(app, "--set", "tasks.root_categories=" + "[" * NESTED + "]" * NESTED, "--print-config")
    assert result.exit_code == 2, result.output
    assert (
        "--set tasks.root_categories: value is not a config value this reads: nested too deeply"
        in result.output
    )
