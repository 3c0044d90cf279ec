# Counts a unit as dead when it is 0 on *some* row, instead of on every row.
def dead_unit_share(model, x):
    was_training = model.training
    model.eval()
    shares = []
    with torch.no_grad():
        h = x
        for layer in model[:-1]:
            h = layer(h)
            shares.append((h <= 0).any(dim=0).float().mean().item())
    model.train(was_training)
    return shares


prediction = "like layernorm"
rms_model, rms_hist = train_seeded(
    0, partial(make_mlp, 64, WIDTH, 10, DEPTH, norm="rmsnorm"), (digits.x_train, digits.y_train),
    batch_size=64, config=sweep_config(0.1))
rms_dead = dead_unit_share(rms_model, digits.x_train)
