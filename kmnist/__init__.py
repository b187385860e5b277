"""kmnist: recognise handwritten Kuzushiji hiragana; data, models, training runs and evaluation."""


class KmnistError(Exception):
    """A problem the user can fix (bad input, missing file, refused request); its message says what and how.

    Every error type of the package derives from it, so the command line prints these as one line and lets
    anything else (a bug) keep its traceback.
    """
