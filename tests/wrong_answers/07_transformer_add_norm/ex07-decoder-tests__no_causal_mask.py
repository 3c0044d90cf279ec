# Wrong: the decoder's self-attention is not masked, so a token sees the tokens after it.
def decoder_layer(parts, y, memory, placement):
    def self_attention(h):
        return parts.self_attn(h, h, h, need_weights=False)[0]

    def cross_attention(h):
        return parts.cross_attn(h, memory, memory, need_weights=False)[0]

    sublayers = ((parts.norm1, self_attention), (parts.norm2, cross_attention),
                 (parts.norm3, parts.ffn))
    for norm, sublayer in sublayers:
        y = norm(y + sublayer(y)) if placement == "post" else y + sublayer(norm(y))
    return y
