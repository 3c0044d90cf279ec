# Wrong: the cross-attention takes its keys and values from the decoder's stream, not from the
# encoder's output, so the encoder is never read.
def decoder_layer(parts, y, memory, placement):
    t = y.shape[1]
    later = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)

    def self_attention(h):
        return parts.self_attn(h, h, h, attn_mask=later, need_weights=False)[0]

    def cross_attention(h):
        return parts.cross_attn(h, h, h, attn_mask=later, need_weights=False)[0]

    sublayers = ((parts.norm1, self_attention), (parts.norm2, cross_attention),
                 (parts.norm3, parts.ffn))
    for norm, sublayer in sublayers:
        y = norm(y + sublayer(y)) if placement == "post" else y + sublayer(norm(y))
    return y
