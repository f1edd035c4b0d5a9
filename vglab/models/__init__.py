"""The models that plug into the core's log-space chain.

    mlp          MLP: the immutable description of a deep fully-connected network
    jacobians    exact per-layer gradient norms and Jacobian spectra (the chain), dispatching on the model
    activity     inactive and dead units over a batch of inputs
    recurrent    RNN / LSTM over time
    transformer  stacks of attention + MLP blocks (no residual, post-LN, pre-LN)

Models import ``vglab.core`` only, never ``vglab.lab``.
"""
