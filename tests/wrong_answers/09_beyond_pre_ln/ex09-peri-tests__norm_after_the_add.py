# Wrong: the output norm after the residual add (as some write-ups draw Peri-LN). This
# normalizes the stream itself, like Post-LN, instead of each sublayer's update.
def peri_ln_forward(x, attn, mlp, ln_1, ln_1_out, ln_2, ln_2_out):
    x = ln_1_out(x + attn(ln_1(x)))
    return ln_2_out(x + mlp(ln_2(x)))
