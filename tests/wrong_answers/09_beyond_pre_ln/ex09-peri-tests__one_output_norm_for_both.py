# Wrong: the attention's output norm is reused on the MLP's output (ln_2_out is ignored).
def peri_ln_forward(x, attn, mlp, ln_1, ln_1_out, ln_2, ln_2_out):
    x = x + ln_1_out(attn(ln_1(x)))
    return x + ln_1_out(mlp(ln_2(x)))
