# Wrong: in Pre-LN, also passes the encoder's output through the decoder's norm2; only the
# decoder's stream (the queries) goes through the decoder's norm, the encoder normalized its own.
def decoder_layer(parts, y, memory, placement):
    t = y.shape[1]
    later = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)

    def self_attention(h):
        return parts.self_attn(h, h, h, attn_mask=later, need_weights=False)[0]

    def cross_attention(h):
        m = parts.norm2(memory) if placement == "pre" else memory
        return parts.cross_attn(h, m, m, need_weights=False)[0]

    sublayers = ((parts.norm1, self_attention), (parts.norm2, cross_attention),
                 (parts.norm3, parts.ffn))
    for norm, sublayer in sublayers:
        y = norm(y + sublayer(y)) if placement == "post" else y + sublayer(norm(y))
    return y
