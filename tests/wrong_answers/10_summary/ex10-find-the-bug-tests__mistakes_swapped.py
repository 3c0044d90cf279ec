# Wrong: finds the three wrong candidates but swaps the mistakes of c and d.
verdicts = {"a": "no final norm", "b": "correct", "c": "norm after the add",
            "d": "stream normalized", "e": "correct"}
