# Wrong: the layers are Pre-LN, but the final norm after the last layer is missing.
def pre_ln_encoder(layers, final_norm, x):
    for layer in layers:
        h = layer.norm1(x)
        x = x + layer.dropout(layer.self_attn(h, h, h, need_weights=False)[0])
        x = x + layer.dropout(layer.ffn(layer.norm2(x)))
    return x
