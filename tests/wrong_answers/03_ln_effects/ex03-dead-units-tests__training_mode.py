# Runs the model in training mode: BatchNorm then uses (and updates) the batch statistics, so
# the answer is not the trained model's, and the model's running statistics change.
def dead_unit_share(model, x):
    shares = []
    with torch.no_grad():
        h = x
        for layer in model[:-1]:
            h = layer(h)
            shares.append((h <= 0).all(dim=0).float().mean().item())
    return shares


prediction = "like layernorm"
rms_model, rms_hist = train_seeded(
    0, partial(make_mlp, 64, WIDTH, 10, DEPTH, norm="rmsnorm"), (digits.x_train, digits.y_train),
    batch_size=64, config=sweep_config(0.1))
rms_dead = dead_unit_share(rms_model, digits.x_train)
