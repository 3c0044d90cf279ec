# Wrong: calls each layer's own forward, which is Post-LN (the norm after the add), then adds a
# final norm.
def pre_ln_encoder(layers, final_norm, x):
    for layer in layers:
        x = layer(x)
    return final_norm(x)
