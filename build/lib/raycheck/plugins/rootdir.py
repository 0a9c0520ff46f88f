"""Re-decide pytest's rootdir and inifile once raycheck's options are known.

pytest (9.2) picks its rootdir and inifile from the command line *before* it loads entry-point
plugins, while it does not yet know ``--target`` takes a value: in ``pytest -m connectivity
--target /tmp/t.yaml`` it takes ``/tmp/t.yaml`` for a test path, chooses ``/tmp`` as rootdir,
finds no configuration there and then collects the whole current directory without the
checkout's ``testpaths`` or strict options. When the test paths parsed with raycheck's options
give another rootdir or inifile, this applies pytest's own decision for them (same function,
same inputs, the option values left out) before the initial conftests load. A run that names
``-c``/``--rootdir`` itself is left as it is.
"""

from __future__ import annotations

import pytest
from _pytest.config.findpaths import determine_setup


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    ns = early_config.known_args_namespace
    if ns.inifilename or ns.rootdir:
        return
    rootpath, inipath, inicfg, ignored = determine_setup(
        inifile=None, override_ini=ns.override_ini, args=ns.file_or_dir, rootdir_cmd_arg=None,
        invocation_dir=early_config.invocation_params.dir)
    if (rootpath, inipath) == (early_config.rootpath, early_config.inipath):
        return
    decided_cut = str(early_config.inipath.parent if early_config.inipath else early_config.rootpath)
    early_config._rootpath = rootpath  # noqa: SLF001 (what Config.parse sets from determine_setup)
    early_config._inipath = inipath  # noqa: SLF001
    early_config._inicfg = inicfg  # noqa: SLF001
    early_config._ignored_config_files = ignored  # noqa: SLF001
    early_config._inicache.clear()  # noqa: SLF001
    parser.extra_info["rootdir"] = str(rootpath)
    parser.extra_info["inifile"] = str(inipath)
    if ns.confcutdir == decided_cut:  # pytest's default, not the user's: follow the new inifile
        ns.confcutdir = str(inipath.parent if inipath else rootpath)
    args[:0] = early_config.getini("addopts")  # the new inifile's addopts, as Config.parse adds them
