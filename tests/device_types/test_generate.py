"""The shipped device-type data is what `specc device-types` makes from the
v1.4 tree and the hand-written queue data; the generator refuses bad data."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from specc.upstream.device_types import DeviceTypesError, device_types, load_queue_data, render
from specc.upstream.tree import load_tree
from tests.spec_trees import upstream_checkout

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "device_ref" / "data" / "device_types.json"


@pytest.fixture(scope="module")
def tree():
    return load_tree(upstream_checkout())


def test_regenerating_from_the_tree_gives_the_committed_file(tree):
    # regenerate with: specc device-types --spec-tree $VIRTIO_SPEC_TREE -o device_ref/data/device_types.json
    assert render(device_types(tree, load_queue_data())) == SHIPPED.read_text(encoding="utf-8")


def test_ids_and_bits_come_from_the_tree(tree):
    doc = device_types(tree, load_queue_data())
    net = doc["types"]["net"]
    assert net["device_id"] == 1 and net["features"]["17"] == "VIRTIO_NET_F_CTRL_VQ"
    assert net["legacy_features"]["41"] == "VIRTIO_NET_F_GUEST_RSC4"
    assert doc["types"]["crypto"]["features"]["5"] == "VIRTIO_CRYPTO_F_AKCIPHER_STATELESS_MODE"
    assert doc["types"]["gpu"]["device_id"] == 16
    assert doc["independent_features"]["40"] == "VIRTIO_F_RING_RESET"


def _broken(mutate) -> dict:
    data = load_queue_data()
    mutate(data)
    return data


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["net"]["queues"][1].update(when_any=["VIRTIO_NET_F_NOPE"]), "VIRTIO_NET_F_NOPE is not a feature"),
    (lambda d: d["gpu"]["queues"][0]["queues"][0].update(direction="sideways"), "direction must be one of"),
    (lambda d: d.pop("gpu"), "lacks: gpu"),
    (lambda d: d["rng"]["queues"][0]["queues"][0].update(name="requestq{n}"), "repeated segment only"),
    (lambda d: d["rng"].update(colour="blue"), "unknown key(s) colour"),
    (lambda d: d["scsi"]["queues"][1]["repeat"].update(at=[0, 3]), "size of 1, 2 or 4"),
])
def test_bad_queue_data_is_refused_with_one_line(tree, mutate, message):
    with pytest.raises(DeviceTypesError) as e:
        device_types(tree, _broken(mutate))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_cli_writes_the_file_and_refuses_a_non_tree(tmp_path):
    out = tmp_path / "dt.json"
    r = subprocess.run([sys.executable, "-m", "specc.cli", "device-types", "--spec-tree", str(tmp_path),
                        "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not a virtio spec tree" in r.stderr
    tree_path = upstream_checkout()
    r = subprocess.run([sys.executable, "-m", "specc.cli", "device-types", "--spec-tree", str(tree_path),
                        "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["types"]["net"]["device_id"] == 1
