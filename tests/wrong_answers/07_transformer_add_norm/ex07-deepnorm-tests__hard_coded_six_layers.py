# Wrong: returns the numbers of the worked example (6 layers) whatever the depth.
def deepnorm_constants(architecture, n_encoder=0, n_decoder=0):
    if architecture in ("encoder", "decoder"):
        return 1.8612, 0.3799
    if architecture == "encoder-decoder":
        return (1.4179, 0.4970), (2.0598, 0.3433)
    raise ValueError(f"unknown architecture {architecture!r}")
