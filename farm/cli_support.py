"""What every `farm` command shares: the --config option, loading the config or failing with one
line, connecting to the farm's Redis."""

from __future__ import annotations

import sys

import click

from farm import config as config_mod
from farm.config import Config
from farm.redis_server import redis_url_of
from farm.redisconn import RedisUnavailable, connect


def load_config(path: str | None, overrides: dict | None = None) -> Config:
    try:
        return config_mod.load(path, overrides=overrides)
    except config_mod.ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"farm: config: {problem}", err=True)
        sys.exit(2)


def fail(message: str, code: int = 1):
    click.echo(f"farm: {message}", err=True)
    sys.exit(code)


config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False),
                             envvar="FARM_CONFIG", help="TOML config file (env FARM_CONFIG).")



def connect_redis(cfg: Config):
    """A client of the farm's Redis, or exit with one line saying why there is none."""
    try:
        return connect(redis_url_of(cfg))
    except RedisUnavailable as exc:
        fail(str(exc) if cfg.redis.url else f"the farm's own Redis is not running ({exc}); "
             f"start the farm first")
