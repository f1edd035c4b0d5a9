"""Sphinx configuration of the course website (``make site``; docs/build.py stages the lessons and runs Sphinx).

The lessons (notebooks/NN_*.ipynb) are read by MyST-NB, executed at every build (a failing cell fails the
build), and rendered with sphinx-book-theme, whose launch buttons open each page in Binder, Colab or a
JupyterHub.  Formulas are typeset by a MathJax 3 copied into the site (sphinx-mathjax-offline), so the site
needs no CDN.
"""

import os

# The course's public repository.  PLACEHOLDER: vglab has no public home yet; the notebooks' "Open in Colab"
# badges and setup cell and README.md's badges name the same repository (tests/test_colab.py checks they agree).
REPOSITORY_URL = "https://github.com/vglab/vglab"
BRANCH = "main"
# A course's JupyterHub (nbgitpuller pulls the repository into each student's home).  PLACEHOLDER; a course
# sets its own: VGLAB_JUPYTERHUB_URL=https://hub.my-university.example make site
JUPYTERHUB_URL = os.environ.get("VGLAB_JUPYTERHUB_URL", "https://jupyterhub.example.org")

project = "vglab"
html_title = "vglab — the vanishing-gradient lab"
author = "the vglab authors"
copyright = "the vglab authors, MIT licence"

extensions = ["myst_nb", "sphinx-mathjax-offline"]
myst_enable_extensions = ["dollarmath", "amsmath"]
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# Execute every lesson at every build, in its own fresh kernel (nbclient: no Jupyter server, so it also runs
# as root).  Any cell error stops the build.
nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_output_stderr = "remove"  # progress bars and library warnings: not part of a lesson's page
# A static page has no kernel: show every figure and dashboard by the PNG in its display data, not by a
# widget view that would need one (so no widget JavaScript from a CDN either); the PNG also before ipympl's
# text/html copy of a figure (an inline data: URI), so that every figure is a file of the site.
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None), ("html", "image/png", 25)]
nb_ipywidgets_js = {}

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["vglab.css"]
html_theme_options = {
    "repository_url": REPOSITORY_URL,
    "repository_branch": BRANCH,
    "path_to_docs": "notebooks",
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {
        "binderhub_url": "https://mybinder.org",
        "colab_url": "https://colab.research.google.com",
        "jupyterhub_url": JUPYTERHUB_URL,
        "notebook_interface": "jupyterlab",
    },
}
