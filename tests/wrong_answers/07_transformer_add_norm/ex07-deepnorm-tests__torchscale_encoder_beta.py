# Wrong: the encoder side's beta as one implementation computes it, 1.15 (N^4 M)^(-1/16),
# instead of the paper's 0.87 (N^4 M)^(-1/16).
def deepnorm_constants(architecture, n_encoder=0, n_decoder=0):
    if architecture == "encoder":
        return (2 * n_encoder) ** 0.25, (8 * n_encoder) ** -0.25
    if architecture == "decoder":
        return (2 * n_decoder) ** 0.25, (8 * n_decoder) ** -0.25
    if architecture == "encoder-decoder":
        both = n_encoder**4 * n_decoder
        encoder = (0.81 * both ** (1 / 16), 1.15 * both ** (-1 / 16))
        return encoder, ((3 * n_decoder) ** 0.25, (12 * n_decoder) ** -0.25)
    raise ValueError(f"unknown architecture {architecture!r}")
