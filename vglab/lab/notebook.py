"""The one setup call at the top of every notebook: ``from vglab.lab import setup; setup()``.

It makes the same first cell work unchanged in JupyterLab, VS Code and Google Colab:

- live figures: matplotlib's ``widget`` backend (ipympl, what ``%matplotlib widget`` selects);
- on Colab, also Colab's custom widget manager (``google.colab.output.enable_custom_widget_manager()``),
  without which Colab shows no third-party widget (ipympl's canvas);
- where ipympl is not installed: one line saying so, and static (inline) figures instead of an error; the
  dashboards still show their controls, and every dashboard also carries a PNG of its figure.

The notebook's first cell installs the package first where it is missing (Colab)::

    try:
        import vglab
    except ImportError:  # Colab: install the course package (ipympl comes with it)
        %pip install -q "vglab @ git+https://github.com/vglab/vglab"
    from vglab.lab import setup; setup()
"""

from __future__ import annotations

import importlib.util
import sys

MISSING_IPYMPL = ("vglab: ipympl is not installed, so figures are static images (inline); for live figures: "
                  "%pip install ipympl, then restart the kernel.")


def in_colab() -> bool:
    """Whether this kernel runs on Google Colab (its runtime imports ``google.colab`` at start)."""
    return "google.colab" in sys.modules


def setup(*, live: bool = True) -> str:
    """Choose matplotlib's backend for this notebook and enable widgets where the front-end needs it.

    Returns the backend selected: ``"widget"`` (ipympl, live figures), ``"inline"`` (static figures: ipympl
    missing, or ``live=False``), or ``"none"`` outside IPython (a plain script: nothing to set up).
    """
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return "none"
    if in_colab():
        from google.colab import output

        output.enable_custom_widget_manager()
    if live and importlib.util.find_spec("ipympl") is None:
        print(MISSING_IPYMPL)
        live = False
    backend = "widget" if live else "inline"
    shell.run_line_magic("matplotlib", backend)
    return backend
