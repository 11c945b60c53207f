"""The README's Python examples run as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_opens_with_the_two_setup_commands():
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(), flags=re.S).group(1)
    lines = first_block.strip().splitlines()
    assert len(lines) == 2
    assert all(line.startswith("pip install torch==2.13.0 && pip install -e ") for line in lines)
    ci = (README.parent / ".ci" / "run").read_text()
    assert lines[1] in ci  # CI runs exactly the README's test command


def test_readme_python_examples_run(tmp_path, monkeypatch):
    blocks = _python_blocks()
    assert blocks
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})
