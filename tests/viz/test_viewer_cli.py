"""``any4d view``: its options reach ``show_scene``; bad values are usage errors naming them."""

import pytest

import any4d.viz.viewer
from any4d.cli import main
from any4d.data.synthetic import render_clip
from any4d.viz.viewer import MAX_POINTS_PER_FRAME


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("view")
    render_clip(0, num_frames=3, height=8, width=8).save(folder / "scene.safetensors")
    render_clip(1, num_frames=3, height=8, width=8).save(folder / "truth.safetensors")
    return folder / "scene.safetensors", folder / "truth.safetensors"


class _Served:
    """What ``show_scene`` received; its viewer is closed by Ctrl-C (the patched sleep)."""

    def __init__(self):
        self.calls, self.closed = [], False
        self.server = self

    def __call__(self, scene, **options):
        self.calls.append((scene, options))
        return self

    def get_port(self) -> int:
        return 1234

    def close(self) -> None:
        self.closed = True


@pytest.fixture()
def served(monkeypatch):
    served = _Served()
    monkeypatch.setattr(any4d.viz.viewer, "show_scene", served)

    def interrupt(_seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr("time.sleep", interrupt)
    return served


def test_view_passes_every_option_to_show_scene(saved, served, capsys):
    scene, truth = saved
    argv = ["view", str(scene), "--reference", str(truth), "--align", "--fps", "24"]
    argv += ["--point-size", "0.02", "--max-points", "1000", "--port", "0", "--host", "0.0.0.0"]
    assert main([*argv, "--point-stride", "2"]) == 0
    ((shown, options),) = served.calls
    assert shown.num_frames == 3 and options["reference"].num_frames == 3
    assert options == {
        "reference": options["reference"],
        "align": True,
        "port": 0,
        "host": "0.0.0.0",
        "point_stride": 2,
        "point_size": 0.02,
        "max_points_per_frame": 1000,
        "fps": 24.0,
    }
    assert served.closed  # Ctrl-C closes the viewer (and so its server)
    assert "viewer at http://0.0.0.0:1234" in capsys.readouterr().out


def test_view_defaults(saved, served):
    assert main(["view", str(saved[0])]) == 0
    ((_, options),) = served.calls
    assert options["reference"] is None and not options["align"]
    assert options["fps"] is None and options["point_size"] is None  # the scene's own
    assert options["max_points_per_frame"] == MAX_POINTS_PER_FRAME
    assert (options["port"], options["host"]) == (8080, "localhost")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--fps", "0", "argument --fps: 0.0 is not a finite number > 0"),
        ("--fps", "fast", "argument --fps: 'fast' is not a number"),
        ("--point-size", "-1", "argument --point-size: -1.0 is not a finite number > 0"),
        ("--max-points", "0", "argument --max-points: 0 is not ≥ 1"),
        ("--max-points", "1.5", "argument --max-points: '1.5' is not an integer"),
        ("--port", "70000", "argument --port: 70000 is not a port in 0..65535"),
        ("--point-stride", "0", "argument --point-stride: 0 is not ≥ 1"),
    ],
)
def test_bad_values_are_usage_errors_naming_the_option(
    saved, served, capsys, option, value, message
):
    with pytest.raises(SystemExit) as exit_:
        main(["view", str(saved[0]), option, value])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not served.calls


def test_align_without_reference_is_a_usage_error(saved, served, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["view", str(saved[0]), "--align"])
    assert exit_.value.code == 2
    assert "--align needs --reference" in capsys.readouterr().err
    assert not served.calls


def test_a_missing_scene_file_is_reported(tmp_path, served, capsys):
    assert main(["view", str(tmp_path / "nowhere.safetensors")]) == 1
    assert "nowhere.safetensors" in capsys.readouterr().err
