"""The numerical core: pure JAX and NumPy on arrays, no plotting and no widgets.

    activations   φ, φ′ and sup|φ′| of every activation
    init          initialisation schemes (σ_w per family)
    logspace      log-space arithmetic: renormalised vectors, graded products
    compilation   exact_jit (full float32 products on every device) and compile counting
    validation    argument checks with clear errors
    config        the base of every model description: validated fields, replace, to_code, hashing
    results       GradientProfile, the base of every gradient_norms result

Nothing under ``vglab.core`` imports ``vglab.models``, ``vglab.lab``, matplotlib or ipywidgets
(tests/test_layout.py checks the import graph).
"""
