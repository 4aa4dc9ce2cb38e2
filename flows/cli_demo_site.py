"""`howto demo-site`: build the demo world and serve it on 127.0.0.1 (wikiHow + YouTube stand-ins)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from flows.cli_common import fail
from flows.cli_errors import HowtoGroup
from tasks.demo.media import FFmpegMissing
from tasks.demo.site import DemoSite
from tasks.demo.troubles import Troubles, describe, parse_troubles, switch_names
from tasks.demo.world import World, build_world, default_cache_dir

app = typer.Typer(
    cls=HowtoGroup,  # also run alone (`python -m flows.cli_demo_site`): the same one-line errors
    help="The local demo world: a seeded stand-in for wikiHow and YouTube.",
    no_args_is_help=True,
)

WorldDir = Annotated[
    Path | None,
    typer.Option(
        "--world-dir",
        help="Cache for rendered videos. Default $HOWTO_DEMO_CACHE or ~/.cache/howto/demo_world.",
    ),
]
Seed = Annotated[
    int, typer.Option("--seed", help="World seed (0 or more): the same seed builds the same world.", min=0)
]
Generation = Annotated[
    int, typer.Option("--generation", help="Crawl generation: each adds new videos.", min=0)
]
TroubleOption = Annotated[
    list[str] | None,
    typer.Option(
        "--trouble",
        metavar="NAME=VALUE",
        help="Inject a fault (repeatable; id lists comma-separated, e.g. server_error=ID1,ID2). "
        f"Switches: {', '.join(switch_names())}.",
    ),
]


def _build(world_dir: Path | None, seed: int, generation: int) -> World:
    directory = world_dir or default_cache_dir()
    try:
        return build_world(directory, seed=seed, generation=generation)
    except FFmpegMissing as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{directory}: {exc.strerror or exc}")


def _troubles(items: list[str]) -> Troubles:
    try:
        return parse_troubles(items)
    except ValueError as exc:
        fail(str(exc))


@app.command()
def build(world_dir: WorldDir = None, seed: Seed = 0, generation: Generation = 0) -> None:
    """Build (or load) the world and print what it holds."""
    world = _build(world_dir, seed, generation)
    typer.echo(
        f"seed {seed} generation {generation}: {len(world.articles)} articles, {len(world.videos)} videos "
        f"({len(world.usable)} usable), {world.step_count()} distinct steps, built in {world.build_s:.1f}s"
    )


@app.command()
def serve(
    port: Annotated[
        int, typer.Option("--port", help="TCP port on 127.0.0.1; 0 picks a free one.", min=0, max=65535)
    ] = 0,
    world_dir: WorldDir = None,
    seed: Seed = 0,
    generation: Generation = 0,
    trouble: TroubleOption = None,
) -> None:
    """Serve the demo site until Ctrl-C; prints its URL first."""
    troubles = _troubles(trouble or [])  # before the build: a typo should not wait for a world
    world = _build(world_dir, seed, generation)
    try:
        site = DemoSite(world, port=port, troubles=troubles)
    except OSError as exc:
        fail(f"127.0.0.1:{port}: {exc.strerror or exc}")
    stop = threading.Event()
    # Ctrl-C and SIGTERM only set the event: a KeyboardInterrupt raised wherever the main thread happens
    # to be (still printing the banner, say) could skip closing the site.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    typer.echo(site.url)
    typer.echo(
        f"wikiHow API {site.url}/api.php; search with yt-dlp 'demosearch50:<query>' and "
        f"HOWTO_DEMO_URL={site.url}. Ctrl-C to stop.",
        err=True,
    )
    if on := describe(troubles):
        typer.echo(f"troubles on: {' '.join(on)}", err=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        site.close()


def register(root: typer.Typer) -> None:
    """Mount on the `howto` app (flows/cli.py discovers this)."""
    root.add_typer(app, name="demo-site")


if __name__ == "__main__":  # `python -m flows.cli_demo_site serve` skips importing every other stage
    app()
