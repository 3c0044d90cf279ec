# Wrong: measures, but writes down the 4-layer model's verdict (needs warm-up) instead of reading
# it off the 2-layer runs.
def final_losses_without_warmup(n_layer, seeds):
    return [copy_run("post", 0, s, n_layer=n_layer)[1].final_loss for s in seeds]


two_layer_losses = final_losses_without_warmup(2, (0, 1, 2))
two_layers_need_warmup = True
