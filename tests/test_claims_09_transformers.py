"""Every claim of notebooks/09_transformers.ipynb about what the engine shows, as a test.

Each test builds the configuration the sentence states, runs vglab, and asserts the sentence at the stated
tolerance; the docstring quotes the sentence, and ``quoted`` checks it is still in the notebook.
"""

import numpy as np
import pytest

import vglab
from tests.claims_replay import markdown, replay

STEM = "09_transformers"
TEXT = markdown(STEM)
NET = vglab.Transformer(depth=96, width=64, heads=4, residual=True, norm="pre")


def quoted(sentence: str) -> None:
    assert " ".join(sentence.split()) in " ".join(TEXT.split()), f"no longer in {STEM}: {sentence!r}"


pytestmark = pytest.mark.slow  # three 96-block stacks and a dashboard: about a minute and a half on 2 cores


@pytest.fixture(scope="module")
def stacks():
    """96 blocks, 4 seeds: log10 ‖∂L/∂h_l‖_F relative to the output block's, and the stream RMS."""
    out = {}
    for name, net in (("pre", NET), ("post", NET.replace(norm="post")),
                      ("plain", NET.replace(residual=False, norm=None))):
        result = vglab.gradient_norms(net, seed=0, n_seeds=4)
        g = result.log10_activation_grad
        out[name] = (g - g[:, -1:], result.log10_activation_rms)
    return out


def test_no_residual_no_layernorm_loses_more_than_20_decades_about_0_3_per_block(stacks):
    """"96 blocks of attention + GELU-MLP lose more than 20 decades (about 0.3 per block)" (and the self-check's
    0.3 per block) — every seed below −20 at the input, per block within 0.05 of 0.3."""
    quoted("lose more than 20 decades (about 0.3\nper block)")
    rel = stacks["plain"][0][:, 0]
    assert np.all(rel < -20) and np.all(np.abs(-rel / 96 - 0.3) < 0.05), rel


def test_pre_ln_stays_within_about_one_decade_and_rises_slowly_toward_the_input(stacks):
    """Goal 3: "with pre-LN it stays within about one decade of the output's across 96 blocks, rising slowly
    toward the input" and "Pre-LN's gradient even rises slightly toward the input: there the residual stream
    is smallest" — mean over seeds within 1.25 decades of the output at every block, no block below it by more
    than 0.05, rising (block 0 > block 48 > block 96), and the stream's RMS smallest at the first block."""
    quoted("with pre-LN it stays within about one decade of the output's across 96 blocks")
    quoted("Pre-LN's gradient even rises slightly toward the input: there the residual stream is smallest")
    rel, rms = stacks["pre"]
    mean = rel.mean(axis=0)
    assert np.all(mean < 1.25) and np.all(rel > -0.05), mean.max()
    assert mean[0] > mean[48] > mean[96] - 1e-9
    assert np.all(rms.argmin(axis=1) == 0)


def test_post_ln_sags_in_the_middle_and_is_largest_at_the_input_block(stacks):
    """Goal 3: "with post-LN it sags below the output's in the middle of the stack and is largest at the input
    block"; cell 7: "Post-LN dips in the middle of the stack and recovers only in the bottom two or three blocks" —
    mean over seeds: lowest block between 24 and 72 and more than 2× (0.3 decades) below the output; block 0
    the largest of all and above the output, rising over blocks 2 → 1 → 0; blocks 3–8 below the output."""
    quoted("with post-LN it sags below the output's in the middle of the stack and is\n   largest at the input block")
    quoted("Post-LN dips in the middle of the stack and\nrecovers only in the bottom two or three blocks")
    mean = stacks["post"][0].mean(axis=0)
    assert 24 <= mean.argmin() <= 72 and mean.min() < -0.3, (mean.argmin(), mean.min())
    assert mean.argmax() == 0 and mean[0] > 0
    assert mean[0] > mean[1] > mean[2] and np.all(mean[3:9] < 0), mean[:9]


def test_the_notebooks_printed_checks_hold(stacks):
    """Cell 6's printed facts: "pre-LN: every block within 2 decades of the output", "no block gets less than
    the output" (0.05 slack), "post-LN: some block gets 2x less than the output", "the lower half gets less on
    average" — per seed."""
    pre, post = stacks["pre"][0], stacks["post"][0]
    assert np.all(np.abs(pre) < 2) and np.all(pre > -0.05)
    assert np.all(post.min(axis=1) < -np.log10(2)) and np.all(post[:, :48].mean(axis=1) < 0)


def test_end_state_post_ln_at_96_blocks_shows_the_sag_and_the_largest_input_block():
    """End state after Run All (the notebook's dashboard and dash.set calls, replayed): post-LN, 96 blocks,
    2 seeds — the plotted mean sags more than 2× below the output inside the stack and is largest at block 0,
    the sentence of goal 3 ("sags below the output's in the middle of the stack")."""
    quoted("sags below the output's in the middle of the stack")
    dash = replay(STEM)["dash"]
    assert (dash.result.net.norm, dash.result.net.depth) == ("post", 96)
    mean = dash.plotted()["gradient"]["mean"]
    rel = mean - mean[-1]
    assert rel[1:-1].min() < -np.log10(2) and rel.argmax() == 0, rel
