"""vglab: a lab for the vanishing-gradient problem.

The numerical core (pure JAX, no plotting):
    MLP                 an immutable network description
    BatchNormMLP        a deep MLP with BatchNorm over a batch (exact gradients through BN's Jacobian)
    ConvNet             a 1-D convolutional network (plain or residual); vglab.train trains it on MNIST-1D
    Stack               your own network: a sequence of JAX blocks (functions, Equinox or Flax NNX modules)
    gradient_norms      exact per-layer ‖∂L/∂h_l‖ and ‖∂L/∂W_l‖, in log10, as a GradientProfile (every
                        model's result type derives from it: GradientNorms, RecurrentGradientNorms,
                        TransformerGradientNorms, StackGradientNorms); it dispatches on the GradientModel
                        protocol: every model's ``gradient_profile(seed, n_seeds)``
    jacobian_spectrum   exact singular values of ∂h_L/∂h_0, in log10; it dispatches on the SpectrumModel
                        protocol: a model's ``jacobian_spectrum(seed)`` (MLP, Stack, ConvNet)
    unit_activity       inactive (per input) and dead (for a whole batch) units per layer
    layer_distributions per-layer histograms of activations, saturation and log10|∂L/∂h_l,i| over a batch
    train               a real training run, every step recorded (TrainingHistory: per-layer ‖∂loss/∂W_l‖,
                        update ratios, dead units); it dispatches on the TrainingModel protocol: a model's
                        ``training_run(data, **options)`` (MLP; ConvNet → ConvTrainingHistory; train_convnet
                        is the same call for a ConvNet)
    theory              mean-field predictions and closed-form bounds
"""

from vglab import datasets, theory
from vglab.core.activations import ACTIVATIONS, sup_derivative
from vglab.core.init import INITS
from vglab.core.results import GradientModel, GradientProfile, SpectrumModel, TrainingModel
from vglab.models.activity import UnitActivity, unit_activity
from vglab.models.batchnorm import BatchNormMLP
from vglab.models.convolutional import ConvNet, ConvTrainingHistory, train_convnet
from vglab.models.distributions import LayerDistributions, layer_distributions
from vglab.models.jacobians import GradientNorms, JacobianSpectrum, gradient_norms, jacobian_spectrum
from vglab.models.mlp import MLP
from vglab.models.recurrent import RNN, RecurrentGradientNorms
from vglab.models.stack import Stack, StackGradientNorms, mlp_blocks
from vglab.models.transformer import Transformer, TransformerGradientNorms
from vglab.training import TrainingHistory, train

__version__ = "0.1.0"

__all__ = ["ACTIVATIONS", "INITS", "MLP", "BatchNormMLP", "RNN", "Transformer", "Stack", "StackGradientNorms",
           "mlp_blocks",
           "ConvNet", "ConvTrainingHistory", "train_convnet", "GradientProfile", "GradientModel", "SpectrumModel",
           "TrainingModel",
           "GradientNorms",
           "RecurrentGradientNorms", "TransformerGradientNorms", "JacobianSpectrum",
           "gradient_norms", "jacobian_spectrum", "unit_activity", "UnitActivity",
           "layer_distributions", "LayerDistributions", "sup_derivative", "theory", "TrainingHistory", "train",
           "datasets"]
