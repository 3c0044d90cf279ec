# Wrong: normalizes the stream itself (x = norm(x)) instead of a copy, so the shortcut carries a
# normalized tensor (the bug of the first norm_first=True in PyTorch, issue 61165).
def pre_ln_encoder(layers, final_norm, x):
    for layer in layers:
        x = layer.norm1(x)
        x = x + layer.dropout(layer.self_attn(x, x, x, need_weights=False)[0])
        x = layer.norm2(x)
        x = x + layer.dropout(layer.ffn(x))
    return final_norm(x)
