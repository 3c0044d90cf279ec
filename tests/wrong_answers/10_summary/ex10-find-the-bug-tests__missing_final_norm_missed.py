# Wrong: a has every sublayer right and no final norm; calling it correct misses that the
# Pre-LN stream is never normalized before the output layer.
verdicts = {"a": "correct", "b": "correct", "c": "stream normalized",
            "d": "norm after the add", "e": "correct"}
