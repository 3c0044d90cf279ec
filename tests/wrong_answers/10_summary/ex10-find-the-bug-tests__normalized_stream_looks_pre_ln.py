# Wrong: c puts a norm in front of each sublayer, so it looks like Pre-LN, but the norm
# overwrites the stream itself.
verdicts = {"a": "no final norm", "b": "correct", "c": "correct",
            "d": "norm after the add", "e": "correct"}
