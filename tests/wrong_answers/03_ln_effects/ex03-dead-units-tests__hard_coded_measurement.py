# A correct function, but the measurement is typed in (numbers from another run), not taken
# from the trained network.
def dead_unit_share(model, x):
    was_training = model.training
    model.eval()
    shares = []
    with torch.no_grad():
        h = x
        for layer in model[:-1]:
            h = layer(h)
            shares.append((h <= 0).all(dim=0).float().mean().item())
    model.train(was_training)
    return shares


prediction = "like layernorm"
rms_model, rms_hist = train_seeded(
    0, partial(make_mlp, 64, WIDTH, 10, DEPTH, norm="rmsnorm"), (digits.x_train, digits.y_train),
    batch_size=64, config=sweep_config(0.1))
rms_dead = [0.0, 0.0, 0.05, 0.2, 0.4, 0.45, 0.5, 0.5, 0.65, 0.65, 0.7, 1.0]
