# Wrong: counts one unit-RMS update per block, but a block has two sublayers, each with its own
# output norm.
def predicted_peri_rms(rms0, n_layer):
    return math.sqrt(rms0**2 + n_layer)


def measured_peri_rms(n_layer, seed):
    seed_everything(seed)
    rms = stream_rms(gpt(placement="peri", n_layer=n_layer))
    return rms[0], rms[-1]
