# Wrong: never passes n_layer on, so every run is copy_run's default 4-layer model.
def final_losses_without_warmup(n_layer, seeds):
    return [copy_run("post", 0, s)[1].final_loss for s in seeds]


two_layer_losses = final_losses_without_warmup(2, (0, 1, 2))
two_layers_need_warmup = any(loss > FAIL for loss in two_layer_losses)
