"""Configuration: defaults, TOML, environment overrides, and one clear line per mistake."""

from __future__ import annotations

import pytest

from farm.config import ConfigError, load


def write(tmp_path, text: str):
    path = tmp_path / "farm.toml"
    path.write_text(text)
    return path


def test_defaults_need_no_file():
    cfg = load(None, env={})
    assert cfg.redis.prefix == "farm"
    assert cfg.store.kind == "sqlite"
    assert cfg.supervisor.http == "127.0.0.1:9464"
    assert cfg.dedup.ignore_fields == ["lastReceived"]


def test_file_values_and_environment_overrides(tmp_path):
    path = write(tmp_path, '[workers]\ncount = 3\npin = false\n[redis]\nprefix = "x"\n')
    cfg = load(path, env={"FARM_WORKERS_COUNT": "5", "FARM_DEDUP_IGNORE_FIELDS": "a, b.c"})
    assert cfg.workers.count == 5
    assert cfg.workers.pin is False
    assert cfg.redis.prefix == "x"
    assert cfg.dedup.ignore_fields == ["a", "b.c"]


def test_every_mistake_is_reported_on_its_own_line(tmp_path):
    path = write(tmp_path, """
[workers]
cont = 2
count = -1
pin = "yes"
[store]
kind = "postgres"
[supervisor]
http = "localhost"
[sprvisor]
x = 1
""")
    with pytest.raises(ConfigError) as err:
        load(path, env={"FARM_STORE_COMMIT_MS": "soon", "FARM_REDIS_URLL": "x"})
    problems = err.value.problems
    assert "unknown key [workers] cont; did you mean 'count'?" in problems
    assert "[workers] count = -1 must be at least 0" in problems
    assert "[workers] pin = 'yes' must be true or false" in problems
    assert "[store] kind = 'postgres' must be one of 'sqlite', 'elasticsearch'" in problems
    assert any(p.startswith("[supervisor] http = 'localhost' must be HOST:PORT") for p in problems)
    assert "unknown section [sprvisor]; did you mean 'supervisor'?" in problems
    assert "FARM_STORE_COMMIT_MS='soon' must be a whole number" in problems
    assert any(p.startswith("unknown environment override FARM_REDIS_URLL") for p in problems)
    assert len(problems) == 8


def test_elasticsearch_needs_a_url(tmp_path):
    with pytest.raises(ConfigError, match="needs \\[store\\] url"):
        load(write(tmp_path, '[store]\nkind = "elasticsearch"\n'), env={})


def test_missing_and_broken_files_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load(write(tmp_path, "[workers\n"), env={})


def test_unrelated_farm_variables_are_not_settings():
    cfg = load(None, env={"FARM_TEST_REDIS_URL": "x", "FARM_REQUIRE_ENGINE": "1"})
    assert cfg.redis.url == ""


def test_config_docs_help_and_check_write_nothing(tmp_path, monkeypatch, capsys):
    import farm.config.docs as config_docs

    stale = {tmp_path / "farm.toml": "# stale\n",
             tmp_path / "configuration.md": f"{config_docs.TABLE_START}\nold\n"
                                            f"{config_docs.TABLE_END}\n"}
    for path, text in stale.items():
        path.write_text(text)
    monkeypatch.setattr(config_docs, "ROOT", tmp_path)
    monkeypatch.setattr(config_docs, "TOML_PATH", tmp_path / "farm.toml")
    monkeypatch.setattr(config_docs, "DOC_PATH", tmp_path / "configuration.md")
    with pytest.raises(SystemExit) as exit_help:
        config_docs.main(["--help"])
    assert exit_help.value.code == 0 and "--check" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_bad:
        config_docs.main(["--chek"])
    assert exit_bad.value.code == 2 and "unrecognized arguments: --chek" in \
        capsys.readouterr().err
    assert config_docs.main(["--check"]) == 1
    assert "farm.toml is out of date" in capsys.readouterr().err
    assert all(path.read_text() == text for path, text in stale.items())
    assert config_docs.main([]) == 0
    assert (tmp_path / "farm.toml").read_text() == config_docs.render_toml()
    assert config_docs.main(["--check"]) == 0


def test_shipped_config_and_docs_table_match_the_declarations():
    from farm.config.docs import TOML_PATH, main

    assert main(["--check"]) == 0, "run `python -m farm.config.docs`"
    cfg = load(TOML_PATH, env={})
    assert cfg.workers.batch_max == 2000
