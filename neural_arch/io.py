"""Safe checkpoints: ``save(obj, path)`` / ``load(path)`` without pickle.

A checkpoint is one ``.npz`` file (a zip of ``.npy`` arrays). Every array of the
saved object becomes one member (``a0``, ``a1``, ...); the structure around them
(dicts, lists, tuples, numbers, strings, booleans, None, which arrays are Tensors
or Parameters) is described by a JSON manifest stored as the member
``__manifest__``. For example ``{'step': 3, 'w': array}`` is saved as::

    __manifest__ = {"format": "neural_arch.io", "version": 1,
                    "root": {"t": "dict", "items": [[{"t": "str", "v": "step"},
                                                      {"t": "int", "v": 3}],
                                                     [{"t": "str", "v": "w"},
                                                      {"t": "array", "key": "a0",
                                                       "dtype": "<f4", "shape": [2],
                                                       "sha256": "..."}]]}}
    a0 = array([...])

Why this format:

* Loading never unpickles. The file is opened with ``numpy.load(...,
  allow_pickle=False)``, the manifest is plain JSON, and only the types listed
  above can be rebuilt, so a checkpoint from a stranger cannot run code. A file
  holding pickled data (``torch.save``, ``pickle.dump``, an object array) is
  refused with :class:`CheckpointError`.
* Damage is detected. A truncated or otherwise broken zip, a missing or extra
  member, an array whose dtype, shape or SHA-256 differs from the manifest's all
  raise :class:`CheckpointError` naming what is wrong.
* Saving is atomic. The file is written to a temporary file in the same folder,
  flushed to disk, and renamed over the target with :func:`os.replace`, so a crash
  mid-save leaves the previous checkpoint intact.

Arrays on a GPU are copied to the host when saved; :func:`load` returns NumPy
arrays unless ``device`` is given.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import zipfile
import zlib
from collections import OrderedDict

import numpy as np

from . import backend
from .core.tensor import Parameter, Tensor

__all__ = ["save", "load", "CheckpointError"]

FORMAT = "neural_arch.io"
VERSION = 1
MANIFEST = "__manifest__"

_SUPPORTED = ("dicts, lists, tuples, arrays, Tensors, Parameters, NumPy scalars, "
              "int, float, str, bool and None")


class CheckpointError(ValueError):
    """A file that :func:`load` refuses: not a checkpoint, pickled, truncated or tampered."""


# --- save ------------------------------------------------------------------------------

def _is_array(x) -> bool:
    return isinstance(x, np.ndarray) or backend.get_array_module(x) is not np


def _digest(arr: np.ndarray) -> str:
    """SHA-256 of the array's bytes in C order (a copy only when not C-contiguous)."""
    if arr.size == 0:
        return hashlib.sha256(b"").hexdigest()
    return hashlib.sha256(np.ascontiguousarray(arr).reshape(-1).view(np.uint8)).hexdigest()


class _Packer:
    """Walks an object, collecting its arrays and building the manifest node."""

    def __init__(self):
        self.arrays = {}

    def _array(self, arr, where):
        host = np.asarray(backend.asnumpy(arr))
        if host.dtype.hasobject:
            raise TypeError(f"cannot save {where}: it is an array of Python objects (dtype "
                            f"{host.dtype}), which only pickle could store")
        key = f"a{len(self.arrays)}"
        self.arrays[key] = host
        return {"key": key, "dtype": host.dtype.str, "shape": list(host.shape),
                "sha256": _digest(host)}

    def node(self, obj, where):
        # bool before int: True is an int too.
        if obj is None:
            return {"t": "none"}
        if isinstance(obj, bool):
            return {"t": "bool", "v": obj}
        if isinstance(obj, np.generic):         # NumPy scalars keep their exact dtype
            return dict(t="scalar", **self._array(np.asarray(obj), where))
        if isinstance(obj, int):
            return {"t": "int", "v": int(obj)}
        if isinstance(obj, float):
            v = float(obj)
            return {"t": "float", "v": v if math.isfinite(v) else repr(v)}
        if isinstance(obj, str):
            return {"t": "str", "v": obj}
        if isinstance(obj, Tensor):
            return dict(t="tensor", requires_grad=bool(obj.requires_grad),
                        parameter=isinstance(obj, Parameter), **self._array(obj.data, where))
        if _is_array(obj):
            return dict(t="array", **self._array(obj, where))
        if isinstance(obj, dict):
            items = []
            for k, v in obj.items():
                kn = self._key(k, where)
                items.append([kn, self.node(v, f"{where}[{k!r}]")])
            node = {"t": "dict", "items": items}
            if isinstance(obj, OrderedDict):
                node["ordered"] = True
            return node
        if isinstance(obj, (list, tuple)):
            if isinstance(obj, tuple) and hasattr(obj, "_fields"):
                raise TypeError(f"cannot save {where}: named tuple {type(obj).__name__} "
                                "(convert it with ._asdict() or tuple())")
            return {"t": "list" if isinstance(obj, list) else "tuple",
                    "items": [self.node(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
        raise TypeError(f"cannot save {where}: objects of type {type(obj).__name__} are not "
                        f"supported; a checkpoint holds {_SUPPORTED}")

    def _key(self, k, where):
        if isinstance(k, (str, bool, int, float)) or k is None:
            return self.node(k, where)
        if isinstance(k, tuple):
            return {"t": "tuple", "items": [self._key(x, where) for x in k]}
        raise TypeError(f"cannot save {where}: dict key {k!r} of type {type(k).__name__}; "
                        "keys must be str, int, float, bool, None or tuples of these")


def save(obj, path, *, compress=True) -> None:
    """Write ``obj`` to ``path`` as a checkpoint that loads without pickle.

    Parameters
    ----------
    obj : object
        Nested dicts, lists and tuples of arrays (NumPy or CuPy: GPU arrays are
        copied to the host), Tensors and Parameters (their data and
        ``requires_grad``; not their gradients), NumPy scalars, ``int``, ``float``,
        ``str``, ``bool`` and ``None``. Dict keys may be strings, numbers, booleans,
        None or tuples of these. A model's, optimizer's or scheduler's
        ``state_dict()`` is such an object.
    path : str or os.PathLike
        Target file, used exactly as given (no suffix is added; ``.npz`` or
        ``.ckpt`` are good choices). Its folder must exist.
    compress : bool, default True
        Deflate the arrays (smaller files, slower saves).

    Raises
    ------
    TypeError
        ``obj`` holds something a checkpoint cannot store (the message says where).

    Notes
    -----
    The write is atomic: a temporary file in the target's folder is written,
    flushed to disk and renamed over ``path``. If anything fails (or the process
    dies) midway, the previous file at ``path`` is untouched.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> p = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
    >>> save({"step": 3, "w": np.arange(3.0)}, p)
    >>> load(p)["w"]
    array([0., 1., 2.])
    """
    packer = _Packer()
    root = packer.node(obj, "obj")
    manifest = json.dumps({"format": FORMAT, "version": VERSION, "root": root},
                          allow_nan=False, separators=(",", ":"))
    members = {MANIFEST: np.frombuffer(manifest.encode("utf-8"), dtype=np.uint8)}
    members.update(packer.arrays)

    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save to {path!r}: it is a folder; give a file name")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save to {path!r}: folder {folder!r} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            (np.savez_compressed if compress else np.savez)(f, **members)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)


def _file_mode(path):
    """Keep an existing file's permissions; new files get the usual 0o666 minus umask."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _fsync_folder(folder):
    # Make the rename itself durable (POSIX); not possible or needed everywhere.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- load ------------------------------------------------------------------------------

_PICKLE_HINT = ("neural_arch never unpickles, since unpickling can run arbitrary code; "
                "re-save the data with neural_arch.io.save (nested dicts/lists of arrays)")


def _refuse(path, why):
    return CheckpointError(f"cannot load {path!r}: {why}")


class _Unpacker:
    def __init__(self, path, npz, device):
        self.path = path
        self.npz = npz
        self.device = device
        self.used = set()

    def _array(self, node, where):
        key = node.get("key")
        if not isinstance(key, str) or key == MANIFEST:
            raise _refuse(self.path, f"manifest entry {where} names no valid array")
        if key not in self.npz.files:
            raise _refuse(self.path, f"array {key!r} ({where}) listed in the manifest is "
                                     "missing from the file (truncated or tampered)")
        if key in self.used:
            raise _refuse(self.path, f"array {key!r} is listed twice in the manifest")
        self.used.add(key)
        try:
            arr = self.npz[key]
        except ValueError as e:
            if "pickle" in str(e).lower():
                raise _refuse(self.path, f"array {key!r} holds pickled Python objects; "
                                         + _PICKLE_HINT) from None
            raise _refuse(self.path, f"array {key!r} is damaged ({e})") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
            raise _refuse(self.path, f"array {key!r} is damaged ({e}); the file is "
                                     "truncated or corrupted") from None
        if arr.dtype.str != node.get("dtype") or list(arr.shape) != node.get("shape"):
            raise _refuse(self.path, f"array {key!r} ({where}) has dtype {arr.dtype.str} "
                                     f"and shape {list(arr.shape)}, the manifest says "
                                     f"{node.get('dtype')} and {node.get('shape')} "
                                     "(tampered?)")
        if _digest(arr) != node.get("sha256"):
            raise _refuse(self.path, f"array {key!r} ({where}) does not match its SHA-256 "
                                     "in the manifest (corrupted or tampered)")
        return arr

    def _on_device(self, arr):
        return arr if self.device is None else backend.to_device(arr, self.device)

    def build(self, node, where="root"):
        if not isinstance(node, dict) or not isinstance(node.get("t"), str):
            raise _refuse(self.path, f"manifest entry {where} is malformed")
        t = node["t"]
        if t == "none":
            return None
        if t in ("bool", "int", "str"):
            v = node.get("v")
            ok = {"bool": lambda: isinstance(v, bool),
                  "int": lambda: isinstance(v, int) and not isinstance(v, bool),
                  "str": lambda: isinstance(v, str)}[t]()
            if not ok:
                raise _refuse(self.path, f"manifest entry {where} should hold a {t}, "
                                         f"holds {v!r}")
            return v
        if t == "float":
            v = node.get("v")
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
            if v in ("nan", "inf", "-inf"):
                return float(v)
            raise _refuse(self.path, f"manifest entry {where} should hold a float, holds {v!r}")
        if t == "scalar":
            arr = self._array(node, where)
            if arr.ndim != 0:
                raise _refuse(self.path, f"manifest entry {where} is a scalar but its array "
                                         f"has shape {arr.shape}")
            return arr[()]
        if t == "array":
            return self._on_device(self._array(node, where))
        if t == "tensor":
            arr = self._on_device(self._array(node, where))
            rg = bool(node.get("requires_grad", False))
            if node.get("parameter"):
                return Parameter(arr, requires_grad=rg)
            return Tensor(arr, requires_grad=rg)
        if t in ("list", "tuple"):
            items = node.get("items")
            if not isinstance(items, list):
                raise _refuse(self.path, f"manifest entry {where} is malformed")
            out = [self.build(v, f"{where}[{i}]") for i, v in enumerate(items)]
            return out if t == "list" else tuple(out)
        if t == "dict":
            items = node.get("items")
            if not isinstance(items, list) or not all(
                    isinstance(p, list) and len(p) == 2 for p in items):
                raise _refuse(self.path, f"manifest entry {where} is malformed")
            out = OrderedDict() if node.get("ordered") else {}
            for kn, vn in items:
                k = self.build(kn, f"{where}.key")
                try:
                    hash(k)
                except TypeError:
                    raise _refuse(self.path, f"manifest entry {where} has an unhashable "
                                             "key") from None
                out[k] = self.build(vn, f"{where}[{k!r}]")
            return out
        raise _refuse(self.path, f"manifest entry {where} has unknown type {t!r}")


def _zip_names(npz):
    zf = getattr(npz, "zip", None)
    return zf.namelist() if zf is not None else list(npz.files)


def load(path, *, device=None):
    """Read a checkpoint written by :func:`save`; never unpickles.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    device : str, optional
        Put arrays and Tensors on this device (``'cpu'``, ``'cuda'``, ...). By
        default arrays come back as NumPy arrays and Tensors on the CPU.

    Returns
    -------
    object
        What was saved: dicts (``OrderedDict`` where one was saved), lists, tuples,
        arrays, Tensors/Parameters, NumPy scalars and Python values, equal to the
        saved ones element for element.

    Raises
    ------
    CheckpointError
        The file holds pickled data, is not a neural_arch checkpoint, or is
        truncated, corrupted or tampered with (the message says which).
    FileNotFoundError
        There is no file at ``path``.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot load {path!r}: it is a folder, not a checkpoint file")
    try:
        npz = np.load(path, allow_pickle=False)
    except ValueError:
        # NumPy says "pickled data" for every file that is neither .npy nor .npz;
        # a pickle of protocol 2 or later starts with the PROTO opcode 0x80.
        with open(path, "rb") as f:
            head = f.read(2)
        if head[:1] == b"\x80":
            raise _refuse(path, "the file holds pickled data (perhaps written by "
                                "pickle.dump or an old torch.save); " + _PICKLE_HINT) from None
        if head and b"PK".startswith(head):
            raise _refuse(path, "the file is truncated or corrupted (it begins like a zip "
                                "file but is not one)") from None
        raise _refuse(path, "it is neither an .npz nor an .npy file, so not a neural_arch "
                            "checkpoint") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise _refuse(path, f"the file is truncated or corrupted ({e})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise _refuse(path, "it is a single .npy array, not a neural_arch checkpoint "
                            "(.npz with a manifest)")
    with npz:
        if MANIFEST not in npz.files:
            if any(name.endswith((".pkl", ".pickle")) for name in _zip_names(npz)):
                raise _refuse(path, "the file holds pickled data (a zip with a pickle "
                                    "inside, as torch.save writes); " + _PICKLE_HINT)
            raise _refuse(path, "it has no manifest; it is an .npz file, but not one "
                                "written by neural_arch.io.save")
        try:
            raw = npz[MANIFEST]
            if raw.dtype != np.uint8 or raw.ndim != 1:
                raise ValueError("manifest is not a byte string")
            manifest = json.loads(raw.tobytes().decode("utf-8"))
        except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, zlib.error, EOFError,
                OSError) as e:
            raise _refuse(path, f"its manifest is unreadable ({e}); the file is truncated, "
                                "corrupted or tampered") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise _refuse(path, "its manifest does not describe a neural_arch checkpoint")
        if manifest.get("version") != VERSION:
            raise _refuse(path, f"format version {manifest.get('version')!r} is not "
                                f"supported (this neural_arch reads version {VERSION})")
        un = _Unpacker(path, npz, device)
        obj = un.build(manifest.get("root"))
        extra = sorted(set(npz.files) - un.used - {MANIFEST})
        if extra:
            raise _refuse(path, f"it holds arrays the manifest does not list: {extra} "
                                "(tampered?)")
    return obj
