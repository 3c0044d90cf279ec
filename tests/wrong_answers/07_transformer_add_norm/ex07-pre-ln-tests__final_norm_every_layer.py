# Wrong: applies the final norm after every layer instead of once after the last one.
def pre_ln_encoder(layers, final_norm, x):
    for layer in layers:
        h = layer.norm1(x)
        x = x + layer.dropout(layer.self_attn(h, h, h, need_weights=False)[0])
        x = x + layer.dropout(layer.ffn(layer.norm2(x)))
        x = final_norm(x)
    return x
