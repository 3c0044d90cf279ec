# Wrong: reuses the decoder-only constants (2M)^(1/4), (8M)^(-1/4) for the decoder side of an
# encoder-decoder model, where the paper has (3M)^(1/4), (12M)^(-1/4).
def deepnorm_constants(architecture, n_encoder=0, n_decoder=0):
    if architecture == "encoder":
        return (2 * n_encoder) ** 0.25, (8 * n_encoder) ** -0.25
    if architecture == "decoder":
        return (2 * n_decoder) ** 0.25, (8 * n_decoder) ** -0.25
    if architecture == "encoder-decoder":
        both = n_encoder**4 * n_decoder
        encoder = (0.81 * both ** (1 / 16), 0.87 * both ** (-1 / 16))
        return encoder, ((2 * n_decoder) ** 0.25, (8 * n_decoder) ** -0.25)
    raise ValueError(f"unknown architecture {architecture!r}")
