# Wrong: e calls F.layer_norm with ln_f's own weight, bias and eps, which is exactly ln_f; it
# is not a missing final norm.
verdicts = {"a": "no final norm", "b": "correct", "c": "stream normalized",
            "d": "norm after the add", "e": "no final norm"}
