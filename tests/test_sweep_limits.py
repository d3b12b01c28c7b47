"""Unbounded sweeps, unbounded messages and dead schedulers (issue 17, families 6 and 7).

Family 6: a study is counted before it is expanded (``count_points``, exact for random
specs without duplicate values, an upper bound otherwise) and refused past ``max_points``
(``cosim study run --max-points``) in a fraction of a second whatever the grid's size; every
error message stays bounded however long the input it quotes.

Family 7: a Dask scheduler address where nothing listens, a socket that accepts but never
answers, and a malformed address each end in one ``SchedulerError`` line within the connect
timeout (``studies.runner.check_scheduler``), and in one ``error:`` line at the CLI.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from safeio.limits import MAX_MESSAGE_CHARS, MAX_POINTS
from studies.cli import app
from studies.runner import SchedulerError, check_scheduler
from studies.spec import StudySpecError, count_points, expand, spec_from_dict

runner = CliRunner()

# ----------------------------------------------------------------------------- family 6

GRID_VALUES = {
    "pe_array.rows": st.integers(1, 64),
    "pe_array.cols": st.integers(1, 64),
    "sram.ifmap.size_bytes": st.integers(1024, 2**20),
    "dram.bandwidth_bytes_per_s": st.floats(1e6, 1e12),
    "sparse.zero_handling": st.sampled_from(["none", "gating", "skipping", "nm"]),
}


@st.composite
def small_specs(draw) -> dict:
    grid = {}
    for field in draw(st.lists(st.sampled_from(list(GRID_VALUES)), max_size=3, unique=True)):
        grid[field] = draw(st.lists(GRID_VALUES[field], min_size=1, max_size=3))
    patterns = draw(
        st.lists(st.sampled_from(["dense", "block:4x4", "nm:2:4", "unstructured"]),
                 min_size=1, max_size=3)
    )  # fmt: skip
    return {
        "name": "count",
        "models": ["bert-tiny"],
        "seq_lens": draw(st.lists(st.integers(1, 64), min_size=1, max_size=2)),
        "batches": draw(st.lists(st.integers(1, 8), min_size=1, max_size=2)),
        "hardware": draw(
            st.lists(st.sampled_from(["systolic-32x32-ws", "eie-64pe"]), min_size=1, max_size=2)
        ),
        "grid": grid,
        "sparsities": draw(st.lists(st.sampled_from([0.25, 0.5, 0.9]), min_size=1, max_size=2)),
        "patterns": patterns,
    }


def _distinct(data: dict) -> bool:
    lists = [data["seq_lens"], data["batches"], data["hardware"], data["sparsities"],
             data["patterns"], *data["grid"].values()]  # fmt: skip
    return all(len(set(map(repr, values))) == len(values) for values in lists)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_specs())
def test_points_are_counted_before_they_are_expanded(data: dict) -> None:
    spec = spec_from_dict(data)
    count = count_points(spec)
    try:
        points = expand(spec)
    except StudySpecError:  # a grid value the hardware refuses (e.g. nm on a PE array)
        return
    assert len(points) <= count
    # duplicates only come from repeated values, N:M's fixed sparsity and dense's one point
    if _distinct(data) and not {"dense", "nm:2:4"} & set(data["patterns"]):
        assert len(points) == count
    if count > 1:
        with pytest.raises(StudySpecError, match=f"expands to {count:,} design points"):
            expand(spec, max_points=count - 1)


@settings(max_examples=20, deadline=None)
@given(
    fields=st.integers(3, 8),  # 100**3 points at least: past MAX_POINTS
    values=st.integers(100, 10_000),
    patterns=st.integers(1, 50),
)
def test_a_huge_grid_is_refused_before_any_point_is_built(fields, values, patterns) -> None:
    keys = [
        "pe_array.rows", "pe_array.cols", "vector_unit.lanes", "sram.ifmap.size_bytes",
        "sram.filter.size_bytes", "sram.ofmap.size_bytes", "cores", "sparse.fifo_depth",
    ]  # fmt: skip
    data = {
        "name": "huge",
        "models": ["bert-tiny"],
        "grid": {key: list(range(1, values + 1)) for key in keys[:fields]},
        "patterns": [f"block:{i}x1" for i in range(1, patterns + 1)],
        "sparsities": [0.5],  # a block pattern needs one (no default applies)
    }
    started = time.perf_counter()
    spec = spec_from_dict(data)
    with pytest.raises(StudySpecError) as caught:
        expand(spec)
    message = str(caught.value)
    assert f"{count_points(spec):,} design points" in message
    assert f"over the limit of {MAX_POINTS:,}" in message and "--max-points" in message
    assert time.perf_counter() - started < 5


def _spec_file(tmp_path: Path, data: dict) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_cli_max_points(tmp_path: Path) -> None:
    data = {"name": "few", "models": ["bert-tiny"], "seq_lens": [8],
            "grid": {"pe_array.rows": [4, 8, 16]}, "patterns": ["dense", "block:4x4"],
            "sparsities": [0.5]}  # fmt: skip
    spec = _spec_file(tmp_path, data)
    out = tmp_path / "out"
    result = runner.invoke(app, ["study", "run", spec, "--out", str(out), "--max-points", "5"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    flat = " ".join(result.stderr.split())
    assert "expands to 6 design points, over the limit of 5" in flat
    assert not out.exists()
    bad = runner.invoke(app, ["study", "run", spec, "--max-points", "0"])
    assert bad.exit_code == 2 and "--max-points" in bad.stderr


LONG = "x" * 200_000
LONG_INPUTS = {
    "unknown key": {"grid": {"pe_array": [{LONG: 1}]}},
    "grid value": {"grid": {"pe_array.rows": [LONG]}},
    "quantity": {"grid": {"pe_array": [{"rows": "1 " + LONG}]}},
    "pattern": {"patterns": ["block:" + LONG]},
    "model": {"models": [LONG]},
    "output name": {"outputs": {"report": LONG + "/x"}},
    "many problems": {"grid": {f"a{i}.b": [1] for i in range(500)}},
    "hardware file": {"hardware": [LONG + ".yaml"]},
}


@pytest.mark.parametrize("case", list(LONG_INPUTS))
def test_every_error_message_is_bounded(tmp_path: Path, case: str) -> None:
    """Inputs of 200,000 characters quoted by errors: the CLI line and the library's
    exception both stay within MAX_MESSAGE_CHARS."""
    data = {"name": "long", "models": ["bert-tiny"], "seq_lens": [8], "patterns": ["dense"]}
    data.update(LONG_INPUTS[case])
    result = runner.invoke(
        app, ["study", "run", _spec_file(tmp_path, data), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output[:500]
    assert "Traceback" not in result.output
    assert result.stderr.count("error:") == 1
    assert len(result.stderr) <= MAX_MESSAGE_CHARS + 200
    with pytest.raises(ValueError) as caught:
        expand(spec_from_dict(data))
    assert len(str(caught.value)) <= MAX_MESSAGE_CHARS


def test_an_alias_heavy_grid_value_is_refused_at_load(tmp_path: Path) -> None:
    """The 312 MB message of the issue: aliases that expand to millions of values are refused
    by the loader before anything quotes them."""
    lines = ["name: bomb", "models: [bert-tiny]", "patterns: [dense]",
             "x: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]  # fmt: skip
    lines += [f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    lines.append("grid: {pe_array.rows: *a7}")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    result = runner.invoke(app, ["study", "run", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "expands to more than" in result.stderr
    assert len(result.stderr) <= MAX_MESSAGE_CHARS + 200
    assert time.perf_counter() - started < 10


# ----------------------------------------------------------------------------- family 7


def _serve(accept: bool) -> Iterator[str]:
    """A local TCP socket: accepting connections and never answering (``accept``), or bound
    and closed again so that nothing listens on its port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    held: list[socket.socket] = []
    if not accept:
        sock.close()
        yield f"tcp://127.0.0.1:{port}"
        return
    sock.listen(8)
    stop = threading.Event()

    def accept_forever() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{port}"
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        sock.close()


@pytest.fixture
def silent() -> Iterator[str]:
    yield from _serve(accept=True)


@pytest.fixture
def closed() -> Iterator[str]:
    yield from _serve(accept=False)


@pytest.mark.parametrize("which", ["silent", "closed"])
def test_an_unanswering_scheduler_is_one_error_within_the_timeout(request, which: str) -> None:
    address = request.getfixturevalue(which)
    started = time.perf_counter()
    with pytest.raises(SchedulerError) as caught:
        check_scheduler(address, timeout=1.0)
    elapsed = time.perf_counter() - started
    assert elapsed < 5, elapsed
    message = str(caught.value)
    assert address in message and "\n" not in message
    assert ("did not answer" if which == "silent" else "cannot reach") in message


@pytest.mark.parametrize("address", ["nonsense", "foo://host:1", "tcp://", "tcp://host:notaport"])
def test_a_malformed_scheduler_address_is_one_error(address: str) -> None:
    started = time.perf_counter()
    with pytest.raises(SchedulerError) as caught:
        check_scheduler(address, timeout=1.0)
    assert "\n" not in str(caught.value)
    assert time.perf_counter() - started < 5


def test_a_running_scheduler_answers() -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
        check_scheduler(cluster.scheduler_address, timeout=5.0)


@pytest.mark.parametrize("which", ["silent", "closed"])
def test_cli_scheduler_faults_are_one_line(request, tmp_path: Path, which: str) -> None:
    address = request.getfixturevalue(which)
    data = {"name": "dask", "models": ["bert-tiny"], "seq_lens": [8], "patterns": ["dense"]}
    args = ["study", "run", _spec_file(tmp_path, data), "--out", str(tmp_path / "out"),
            "--scheduler", address, "--no-progress"]  # fmt: skip
    started = time.perf_counter()
    result = runner.invoke(app, args)
    assert time.perf_counter() - started < 30
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stderr.count("error:") == 1
    assert "--scheduler" in result.stderr and address in " ".join(result.stderr.split())
