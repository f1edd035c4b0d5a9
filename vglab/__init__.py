"""vglab: a lab for the vanishing-gradient problem.

The numerical core (pure JAX, no plotting):
    MLP                 an immutable network description
    gradient_norms      exact per-layer ‖∂L/∂h_l‖ and ‖∂L/∂W_l‖, in log10
    jacobian_spectrum   exact singular values of ∂h_L/∂h_0, in log10
    theory              mean-field predictions and closed-form bounds
"""

from vglab import datasets, theory
from vglab.activations import ACTIVATIONS, sup_derivative
from vglab.init import INITS
from vglab.jacobians import GradientNorms, JacobianSpectrum, gradient_norms, jacobian_spectrum
from vglab.networks import MLP
from vglab.recurrent import RNN
from vglab.training import TrainingHistory, train
from vglab.transformer import Transformer

__version__ = "0.1.0"

__all__ = ["ACTIVATIONS", "INITS", "MLP", "RNN", "Transformer", "GradientNorms", "JacobianSpectrum",
           "gradient_norms", "jacobian_spectrum", "sup_derivative", "theory", "TrainingHistory", "train",
           "datasets"]
