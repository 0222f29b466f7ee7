"""Errors a user can cause. The CLI prints them on one line and exits non-zero."""


class AccelsimError(Exception):
    """Base class: the message names the file, field or node, what was expected and what was found."""


class ModelError(AccelsimError):
    """A model file or zoo name that cannot be read or is malformed."""


class UnsupportedOpError(ModelError):
    """An operator the IR or an importer does not support."""


class ShapeError(AccelsimError):
    """Tensor shapes that do not fit (a wrong input shape, inconsistent operands)."""


class InputError(AccelsimError):
    """Bad user input on the command line or in an input file."""


class AccelsimWarning(UserWarning):
    """Something a user should know that does not stop the work: it names the file, field or
    node, and what was done instead."""


class QuantizationWarning(AccelsimWarning):
    """Quantization had to give up precision somewhere (a bias that needed a coarser weight
    scale, a value clamped to its integer range); the message names the layer and channel."""
