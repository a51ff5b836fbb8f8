from device_ref.cli import main


def test_selftest_runs_every_combination(capsys):
    assert main(["selftest", "--requests", "4"]) == 0
    out = capsys.readouterr().out
    assert out.count("SWIOTLB on") == 4 and out.count("SWIOTLB off") == 4
    assert "guest RAM unchanged byte for byte" in out
    assert "selftest passed: 8 combinations" in out


def test_selftest_file_backed_mmio_description(tmp_path, capsys):
    disk = tmp_path / "d.img"
    assert main(["selftest", "--device", "blk", "--layout", "split", "--swiotlb", "on",
                 "--bounce", "mmio", "--disk", str(disk), "--requests", "3"]) == 0
    assert disk.stat().st_size == 1 << 20


def test_selftest_bad_input_is_one_line_exit_2(tmp_path, capsys):
    assert main(["selftest", "--requests", "0"]) == 2
    assert main(["selftest", "--device", "blk", "--disk", str(tmp_path / "no" / "x.img")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("device-ref: error:") for line in err) and len(err) == 2
