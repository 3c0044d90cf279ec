# Wrong: the output norms are never applied, so this is a Pre-LN block.
def peri_ln_forward(x, attn, mlp, ln_1, ln_1_out, ln_2, ln_2_out):
    x = x + attn(ln_1(x))
    return x + mlp(ln_2(x))
