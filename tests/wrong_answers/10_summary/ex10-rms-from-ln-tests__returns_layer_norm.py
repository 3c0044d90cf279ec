# Wrong: assumes RMSNorm and LayerNorm always agree; they do only on zero-mean tokens.
def rms_from_ln(ln_out, mean, var, eps=1e-5):
    return ln_out.clone()
