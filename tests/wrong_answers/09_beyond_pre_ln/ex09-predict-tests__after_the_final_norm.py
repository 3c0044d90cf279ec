# Wrong: measures the stream after the final norm ln_f, which rescales it to RMS 1.
def predicted_peri_rms(rms0, n_layer):
    return math.sqrt(rms0**2 + 2 * n_layer)


def measured_peri_rms(n_layer, seed):
    seed_everything(seed)
    model = gpt(placement="peri", n_layer=n_layer)
    with torch.no_grad():
        xs = model.stream(PROBE)
        return xs[0].square().mean().sqrt().item(), model.ln_f(xs[-1]).square().mean().sqrt().item()
