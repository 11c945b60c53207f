"""The ``any4d`` command: ``render`` writes the grid PNG; bad arguments fail clearly."""

import subprocess
import sys

import pytest
from PIL import Image

from any4d.cli import main
from any4d.data import Scene


def test_render_writes_the_grid_png_and_the_scene(tmp_path, capsys):
    out = tmp_path / "pictures" / "clip.png"
    saved = tmp_path / "clip.safetensors"
    status = main(
        [
            "render",
            "--seed",
            "3",
            "--frames",
            "4",
            "--height",
            "12",
            "--width",
            "16",
            "--trajectory",
            "orbit",
            "--out",
            str(out),
            "--save-scene",
            str(saved),
        ]
    )
    assert status == 0
    scene = Scene.load(saved)
    assert (scene.num_frames, scene.height, scene.width) == (4, 12, 16)
    rows = 1 + (scene.depth is not None) + 2 * (scene.cameras is not None)
    with Image.open(out) as picture:
        # 4 columns, 2-pixel separators between tiles (the grid's default)
        assert picture.size == (4 * 16 + 3 * 2, rows * 12 + (rows - 1) * 2)
    printed = capsys.readouterr().out
    assert str(out) in printed and "frames=4" in printed


def test_render_static_clip_with_fewer_columns(tmp_path):
    out = tmp_path / "static.png"
    status = main(
        [
            "render",
            "--static",
            "--frames",
            "5",
            "--columns",
            "2",
            "--height",
            "8",
            "--width",
            "8",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    with Image.open(out) as picture:
        assert picture.size[0] == 2 * 8 + 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["render", "--frames", "0"], "--frames: 0 is not ≥ 1"),
        (["render", "--height", "abc"], "'abc' is not an integer"),
        (["render", "--trajectory", "spiral"], "invalid choice: 'spiral'"),
        (["render", "--no-such-flag"], "unrecognized arguments"),
        (
            ["complete", "v.mp4", "--task", "geometry", "--select", "median"],
            "invalid choice: 'median'",
        ),
        (["complete", "v.mp4", "--guidance", "nan"], "--guidance: nan is not a finite number"),
        (["complete", "v.mp4", "--solver", "ddim"], "invalid choice: 'ddim'"),
        (["explode"], "invalid choice: 'explode'"),
        ([], "required: COMMAND"),
    ],
)
def test_bad_arguments_exit_with_a_usage_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_setting_the_library_rejects_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "never.png"
    assert main(["render", "--seed", "-1", "--out", str(out)]) == 1
    assert "any4d render: error: seed is -1" in capsys.readouterr().err
    assert not out.exists()


def test_a_bad_sampler_setting_is_refused_before_the_video_is_read(tmp_path, capsys):
    status = main(["complete", str(tmp_path / "missing.mp4"), "--guidance", "-1"])
    assert status == 1
    assert "guidance=-1.0 (expected a finite weight w ≥ 0)" in capsys.readouterr().err


def test_help_lists_the_render_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "render" in capsys.readouterr().out


def test_cli_import_stays_light():
    # `any4d --help` must not pay for torch: the handlers import the library themselves.
    code = "import sys, any4d.cli; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_cli_trajectory_choices_match_the_synthetic_world():
    # cli.py keeps its own copy so that `any4d --help` does not import torch
    from any4d import cli
    from any4d.data.synthetic import TRAJECTORIES

    assert tuple(cli.TRAJECTORIES) == tuple(TRAJECTORIES)


def test_cli_select_and_solver_choices_match_the_library():
    from any4d import cli
    from any4d.diffusion.sampler import SOLVERS
    from any4d.diffusion.search import SELECTS

    assert tuple(cli.SELECTS) == tuple(SELECTS)
    assert tuple(cli.SOLVERS) == tuple(SOLVERS)


@pytest.mark.parametrize(
    "command", [["demo"], ["complete", "x.mp4"], ["eval", "--checkpoint", "c"]]
)
def test_sampler_and_search_options_left_out_are_the_librarys_defaults(command):
    """Given nothing, the CLI passes no sampler or search setting: the checkpoint's (else
    SamplerConfig's and SearchConfig's) apply, each default stated once, in the library."""
    from any4d import cli
    from any4d.diffusion import SearchConfig

    args = cli.build_parser().parse_args(command)
    assert cli._sampler(args) == {}
    if command[0] != "demo":
        assert cli._search(args) == SearchConfig()
    args = cli.build_parser().parse_args([*command, "--steps", "3", "--guidance", "0.5"])
    assert cli._sampler(args) == {"steps": 3, "guidance": 0.5}


def test_demo_candidates_default_matches_the_library():
    from any4d import cli
    from any4d.demo import DEFAULT_CANDIDATES, DEFAULT_SCENES

    args = cli.build_parser().parse_args(["demo"])
    assert (args.candidates, args.scenes) == (DEFAULT_CANDIDATES, DEFAULT_SCENES)
