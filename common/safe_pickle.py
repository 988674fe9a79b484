"""Dataset pickles read as data: a restricted unpickler that admits plain containers,
numbers, strings/bytes and numpy arrays, and nothing that could run code.

Upstream's dataset files (DeepMar `peta_dataset.pkl`, Market-1501 `partitions.pkl`, the
face `.bin` pairs) are Python 2 or 3 pickles of dicts, lists, strings and numpy arrays;
Python 2 strings are read as latin-1, so their bytes survive (`.bin` images).
"""
import io
import os
import pickle

from .errors import UserError

# (module, name) pairs a data pickle may reference; each builds a value, none calls user code
_ALLOWED = {
    ("collections", "OrderedDict"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "bytearray"), ("builtins", "complex"),
    ("builtins", "slice"), ("builtins", "range"),
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),  # only with the classes below
    ("_codecs", "encode"),  # protocol-2 pickles of bytes written by Python 3
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "bool_"), ("numpy", "int64"), ("numpy", "int32"), ("numpy", "float64"), ("numpy", "float32"),
    ("builtins", "object"),  # copyreg._reconstructor(cls, object, None) for old-style containers
}
_NUMPY_DTYPE_MODULES = ("numpy.dtypes",)


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED or module in _NUMPY_DTYPE_MODULES and name.endswith("DType"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"GLOBAL {module}.{name}")


def loads(data: bytes, encoding: str = "latin1"):
    """Unpickle bytes as data; raises pickle.UnpicklingError naming a refused global."""
    return _DataUnpickler(io.BytesIO(data), encoding=encoding).load()


def load(path, what: str = "pickle", encoding: str = "latin1"):
    """Read a data pickle; a missing, corrupt or code-carrying file is one UserError line."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{what} not found: {path}")
    try:
        with open(path, "rb") as f:
            return _DataUnpickler(f, encoding=encoding).load()
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if text.startswith("GLOBAL "):
            raise UserError(f"refused to load {what} {path}: it references {text[7:]}, which is code, not "
                            "data; dataset pickles may hold only containers, numbers, strings and numpy "
                            "arrays") from None
        raise UserError(f"cannot read {what} {path}: {text}".splitlines()[0]) from None
    except (EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError, KeyError,
            UnicodeDecodeError, MemoryError) as exc:
        raise UserError(f"cannot read {what} {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None


def expect(obj, kind, path, what: str, where: str = "the file"):
    """A loaded value of the wrong shape (an int where a dict is expected) is a UserError."""
    if not isinstance(obj, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise UserError(f"{what} {path}: {where} holds a {type(obj).__name__}, expected a {names}")
    return obj
