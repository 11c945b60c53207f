import subprocess
import sys


def test_importing_eval_loads_neither_evo_nor_torchmetrics_nor_later_packages():
    # evo is the tests' reference only; torchmetrics loads when an image metric runs; eval
    # builds on geometry alone (DESIGN §7).
    code = (
        "import sys, any4d.eval; "
        "bad = [m for m in ('evo', 'torchmetrics', 'any4d.model', 'any4d.tokenize', "
        "'any4d.diffusion', 'any4d.data') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
