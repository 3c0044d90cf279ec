# Wrong: alpha and beta swapped: the shortcut scaled down by (8N)^(-1/4), the init gain (2N)^(1/4).
def deepnorm_constants(architecture, n_encoder=0, n_decoder=0):
    if architecture == "encoder":
        return (8 * n_encoder) ** -0.25, (2 * n_encoder) ** 0.25
    if architecture == "decoder":
        return (8 * n_decoder) ** -0.25, (2 * n_decoder) ** 0.25
    if architecture == "encoder-decoder":
        both = n_encoder**4 * n_decoder
        encoder = (0.87 * both ** (-1 / 16), 0.81 * both ** (1 / 16))
        return encoder, ((12 * n_decoder) ** -0.25, (3 * n_decoder) ** 0.25)
    raise ValueError(f"unknown architecture {architecture!r}")
