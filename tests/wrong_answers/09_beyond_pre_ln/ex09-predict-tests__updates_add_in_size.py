# Wrong: adds the sizes of the updates as if they all pointed the same way (RMS 1 each, two per
# block); roughly orthogonal vectors add in quadrature.
def predicted_peri_rms(rms0, n_layer):
    return rms0 + 2 * n_layer


def measured_peri_rms(n_layer, seed):
    seed_everything(seed)
    rms = stream_rms(gpt(placement="peri", n_layer=n_layer))
    return rms[0], rms[-1]
