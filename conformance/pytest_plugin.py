"""pytest plugin: one pytest test per conformance vector.

    pytest -p conformance.pytest_plugin --virtio-device=ADAPTER [--vectors DIR]

Node ids read ``<file>::<requirement id>::<check>[<layout>]``, so pytest's
own tools apply: ``-k`` to select by requirement, ``-x``, ``--junitxml``,
and pytest-xdist's ``-n`` (each worker gets its own adapter). FAIL and
WEDGED fail the test with the evidence; SKIP skips with its reason; REJECT
passes. With no test paths on the command line, the plugin collects the
vectors directory instead of the project's tests.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from conformance.vectors import Test, VectorError, load_file
from conformance.verdicts import Verdict
from conformance import expect_fail
from conformance.commands.run import make_adapter
from conformance.runner import RunOptions, run_test
from device_ref.cli_base import CliError

_STATE: dict = {}


def pytest_addoption(parser) -> None:
    g = parser.getgroup("virtio", "virtio conformance vectors")
    g.addoption("--virtio-device", metavar="ADAPTER",
                help="device to test: ref[:swiotlb=on|off], vhost-user:PATH, spawn:COMMAND")
    g.addoption("--vectors", metavar="DIR", default="out/vectors",
                help="directory of vector files (default out/vectors)")
    g.addoption("--virtio-layout", default="split,packed", metavar="LAYOUTS",
                help="ring layouts, comma-separated (default split,packed)")
    g.addoption("--virtio-step-timeout", type=float, default=2.0, metavar="SECONDS")
    g.addoption("--virtio-device-type", metavar="TYPE",
                help="device type behind vhost-user/spawn (default blk)")
    g.addoption("--virtio-bounce", metavar="BASE:SIZE", help="bounce region of the back-end")
    g.addoption("--virtio-expect-fail", metavar="FILE",
                help="known failures (requirement ids): xfail, and fail when one passes")


def pytest_configure(config) -> None:
    if not config.getoption("--virtio-device"):
        return
    vectors = Path(config.getoption("--vectors"))
    if not vectors.is_dir():
        raise pytest.UsageError(f"--vectors {vectors}: no such directory "
                                f"(make vectors with: specc vectors spec/*.vspec -o DIR)")
    source = getattr(config, "args_source", None)
    if source is not None and source != config.ArgsSource.ARGS:
        config.args = [str(vectors)]
    layouts = [x.strip() for x in config.getoption("--virtio-layout").split(",") if x.strip()]
    if not layouts or any(x not in ("split", "packed") for x in layouts):
        raise pytest.UsageError("--virtio-layout takes split, packed or both")
    _STATE.update(layouts=layouts, adapter=None, group=None, vectors=vectors.resolve())
    try:   # check the adapter now, so a typo is one usage error, not one per test
        make_adapter(config.getoption("--virtio-device"), config.getoption("--virtio-device-type"),
                     config.getoption("--virtio-bounce"),
                     config.getoption("--virtio-step-timeout")).cleanup()
    except CliError as exc:
        raise pytest.UsageError(str(exc)) from None
    listed = config.getoption("--virtio-expect-fail")
    if listed:
        try:
            _STATE["expect_fail"] = expect_fail.read(listed)
        except expect_fail.ExpectFailError as exc:
            raise pytest.UsageError(str(exc)) from None


def pytest_collect_file(file_path: Path, parent):
    if not _STATE or file_path.suffix != ".json":
        return None
    if _STATE["vectors"] not in (file_path.resolve().parent, *file_path.resolve().parents):
        return None
    return VectorCollector.from_parent(parent, path=file_path)


class VectorCollector(pytest.File):
    def collect(self):
        try:
            vf = load_file(self.path)
        except VectorError as exc:
            raise self.CollectError(str(exc)) from None
        for test in vf.tests():
            req, _, check = test.check_id.partition("/")
            for layout in _STATE["layouts"]:
                yield VectorItem.from_parent(self, name=f"{req}::{check}[{layout}]",
                                             test=test, layout=layout)


class VectorItem(pytest.Item):
    def __init__(self, *, test: Test, layout: str, **kw) -> None:
        super().__init__(**kw)
        self.test = test
        self.layout = layout
        self.user_properties.append(("requirement", test.requirement))

    def _adapter(self):
        adapter = _STATE.get("adapter")
        if adapter is None:
            cfg = self.config
            try:
                adapter = make_adapter(cfg.getoption("--virtio-device"),
                                       cfg.getoption("--virtio-device-type"),
                                       cfg.getoption("--virtio-bounce"),
                                       cfg.getoption("--virtio-step-timeout"))
            except CliError as exc:
                raise pytest.UsageError(str(exc)) from None
            _STATE["adapter"] = adapter
        return adapter

    def runtest(self) -> None:
        adapter = self._adapter()
        group = (id(self.test.group), self.layout)
        if _STATE.get("group") != group:
            if _STATE.get("group") is not None:
                adapter.end_group()
            adapter.begin_group(f"{self.test.group.file.module}#{self.test.group.index}")
            _STATE["group"] = group
        opts = RunOptions(layout=self.layout,
                          step_timeout=self.config.getoption("--virtio-step-timeout"))
        r = run_test(self.test, adapter, opts)
        self.user_properties.append(("verdict", r.shown))
        listed = _STATE.get("expect_fail", {})
        bad = r.verdict in (Verdict.FAIL, Verdict.WEDGED)
        if self.test.requirement in listed:
            if bad:
                pytest.xfail(f"known failure: {r.verdict.value}: {r.reason}")
            if r.verdict in (Verdict.PASS, Verdict.REJECT):
                raise ConformanceFailure(r, now_passing=True)
        if r.verdict is Verdict.SKIP:
            pytest.skip(r.reason)
        if bad:
            raise ConformanceFailure(r)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, ConformanceFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{self.test.check_id}[{self.layout}]"


class ConformanceFailure(Exception):
    def __init__(self, r, now_passing: bool = False) -> None:
        ev = r.evidence
        if now_passing:
            text = (f"{r.requirement} is listed as a known failure but is now {r.verdict.value}:"
                    f" remove it from the list")
        else:
            text = (f"{r.verdict.value}{' (CRITICAL)' if ev.critical else ''}: requirement "
                    f"{r.requirement} ({r.keyword}), {r.label}\n"
                    f"  step:     {ev.step}  [{ev.source}]\n"
                    f"  expected: {ev.expected or '-'}\n"
                    f"  observed: {ev.observed}")
        super().__init__(text)


def pytest_sessionfinish(session, exitstatus) -> None:
    adapter = _STATE.get("adapter")
    if adapter is not None:
        adapter.close()
        _STATE["adapter"] = None
