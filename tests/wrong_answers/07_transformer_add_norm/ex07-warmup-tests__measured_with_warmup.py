# Wrong: trains with the lesson's warm-up, so it measures something else than "without warm-up".
def final_losses_without_warmup(n_layer, seeds):
    return [copy_run("post", WARMUP, s, n_layer=n_layer)[1].final_loss for s in seeds]


two_layer_losses = final_losses_without_warmup(2, (0, 1, 2))
two_layers_need_warmup = any(loss > FAIL for loss in two_layer_losses)
