"""A clock the test moves by hand (set `t`), for the operator's pure bookkeeping classes."""


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t
