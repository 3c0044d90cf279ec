# Wrong: the decoder layer has only two sublayers (self- and cross-attention); the FFN is missing.
def decoder_layer(parts, y, memory, placement):
    t = y.shape[1]
    later = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)

    def self_attention(h):
        return parts.self_attn(h, h, h, attn_mask=later, need_weights=False)[0]

    def cross_attention(h):
        return parts.cross_attn(h, memory, memory, need_weights=False)[0]

    for norm, sublayer in ((parts.norm1, self_attention), (parts.norm2, cross_attention)):
        y = norm(y + sublayer(y)) if placement == "post" else y + sublayer(norm(y))
    return y
