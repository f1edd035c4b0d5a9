"""The lab layer: widgets and plots over the numerical core (ipywidgets, matplotlib, ipympl).

    dashboards            Dashboard (the shell), GradientDashboard, PhaseDiagramDashboard, SpectrumDashboard
    sequence_dashboards   RecurrentDashboard, TransformerDashboard
    training_dashboards   TrainingDashboard
    batchnorm_dashboards  BatchNormDashboard (lesson 13: gradients with and without BatchNorm)
    conv_dashboards       DegradationDashboard (plain vs residual ConvNets on MNIST-1D)
    plots                 in-place matplotlib artists (log-profile plots, blitting)
    notebook              setup(): every notebook's first call (live figures in JupyterLab, VS Code, Colab)

Notebooks import dashboards from here: ``from vglab.lab import GradientDashboard``.
"""

from vglab.lab.batchnorm_dashboards import BatchNormDashboard
from vglab.lab.conv_dashboards import DegradationDashboard
from vglab.lab.dashboards import Dashboard, GradientDashboard, PhaseDiagramDashboard, SpectrumDashboard
from vglab.lab.notebook import setup
from vglab.lab.sequence_dashboards import RecurrentDashboard, TransformerDashboard
from vglab.lab.training_dashboards import TrainingDashboard

__all__ = ["BatchNormDashboard", "DegradationDashboard", "Dashboard", "GradientDashboard", "PhaseDiagramDashboard",
           "SpectrumDashboard",
           "RecurrentDashboard", "TransformerDashboard", "TrainingDashboard", "setup"]
